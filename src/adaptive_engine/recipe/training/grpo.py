"""Group-relative policy optimisation: sample a group per prompt, score each with a reward function, learn.

The reward function gets the prompts (message lists), the completion texts and the rows' other fields:
``reward(prompts, completions, rows) -> list[float | None]`` (None: no score for that sample).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_engine.devices import pick_device

from .base import (
    MetricsSink,
    ProgressSink,
    Reporter,
    StopCheck,
    TrainingInputError,
    TrainResult,
    TrainSettings,
    common_args,
    load_for_training,
    peft_config,
    run_and_save,
    scratch_dir,
)
from .data import prompt_records

log = logging.getLogger(__name__)

RewardFn = Callable[[list[list[dict[str, str]]], list[str], list[dict[str, Any]]], Sequence[float | None]]

_TRL_KWARGS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}


@dataclass
class GrpoSettings:
    num_generations: int = 4  # group size per prompt
    max_completion_length: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.0  # KL weight; 0 needs no reference model
    # Optimizer steps served by one round of generation. Sampling is much of a step's time on a CPU, and
    # one batch of 4x the completions costs much less than 4 batches; later steps of a round learn from
    # slightly older samples (TRL corrects with the importance ratio).
    steps_per_generation: int = 1

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise TrainingInputError("num_generations must be >= 2 (rewards are compared within a group)")
        if self.max_completion_length < 1:
            raise TrainingInputError("max_completion_length must be >= 1")
        if self.steps_per_generation < 1:
            raise TrainingInputError("steps_per_generation must be >= 1")


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


def wrap_reward(reward: RewardFn, name: str = "reward") -> Callable[..., list[float | None]]:
    """Adapt ``reward(prompts, completions, rows)`` to the keyword call TRL makes."""

    def reward_func(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float | None]:
        keys = [k for k in columns if k not in _TRL_KWARGS]
        rows = [{k: columns[k][i] for k in keys} for i in range(len(prompts))]
        texts = [_completion_text(c) for c in completions]
        scores = list(reward(list(prompts), texts, rows))
        if len(scores) != len(texts):
            raise TrainingInputError(f"the reward function returned {len(scores)} scores for {len(texts)} samples")
        return scores

    reward_func.__name__ = name
    return reward_func


def train_grpo(
    model_dir: Path | str,
    rows: Iterable[Mapping[str, Any]],
    reward: RewardFn,
    output_dir: Path | str,
    settings: TrainSettings | None = None,
    grpo: GrpoSettings | None = None,
    *,
    on_metrics: MetricsSink | None = None,
    on_progress: ProgressSink | None = None,
    should_stop: StopCheck | None = None,
    manifest: Mapping[str, Any] | None = None,
    gguf_base: Path | None = None,
    on_log: Callable[[str], None] | None = None,
) -> TrainResult:
    """``gguf_base``: the base model's GGUF file (the one ``model_dir`` was dequantized from): sampling runs in
    llama.cpp on it with the current LoRA (:mod:`.llamacpp_sampling`); without it, or when llama.cpp cannot
    serve the model, TRL's ``generate`` samples, and ``on_log`` is told why."""
    from datasets import Dataset
    from trl import GRPOConfig

    settings = settings or TrainSettings(learning_rate=1e-5)
    grpo = grpo or GrpoSettings()
    if settings.batch_size % grpo.num_generations:
        raise TrainingInputError(
            f"batch_size ({settings.batch_size}) must be a multiple of num_generations ({grpo.num_generations})"
        )
    records = prompt_records(rows)
    model, tokenizer, already_peft = load_for_training(model_dir, settings)
    reporter = Reporter("grpo", on_metrics, on_progress, should_stop)
    with scratch_dir() as scratch:
        config = GRPOConfig(
            **common_args(settings, Path(scratch)),
            num_generations=grpo.num_generations,
            max_completion_length=grpo.max_completion_length,
            temperature=grpo.temperature,
            top_p=grpo.top_p,
            beta=grpo.beta,
            steps_per_generation=grpo.steps_per_generation * settings.grad_accum,
        )
        trainer = _trainer_class()(
            model=model,
            reward_funcs=[wrap_reward(reward)],
            args=config,
            train_dataset=Dataset.from_list(records),
            processing_class=tokenizer,
            peft_config=None if already_peft else peft_config(settings),
            callbacks=[reporter.callback],
        )
        sampler, reason = _fast_sampler(gguf_base, settings)
        trainer.on_log = on_log or log.info
        trainer.on_log("grpo: sampling with llama.cpp" if sampler else f"grpo: sampling with TRL's generate: {reason}")
        trainer.fast_sampler = sampler
        try:
            return run_and_save(
                trainer,
                reporter,
                Path(output_dir),
                tokenizer,
                method="grpo",
                adapter=already_peft or settings.lora is not None,
                extra_manifest={
                    "rows": len(records),
                    "num_generations": grpo.num_generations,
                    "sampling": "transformers" if trainer.fast_sampler is None else "llama.cpp",
                    **(manifest or {}),
                },
            )
        finally:
            if trainer.fast_sampler is not None:
                trainer.fast_sampler.close()


def _fast_sampler(gguf_base: Path | None, settings: TrainSettings) -> tuple[Any, str | None]:
    """(a LlamaCppSampler, None), or (None, why TRL's generate samples instead)."""
    if gguf_base is None:
        return None, "the base model is not a GGUF file"
    if settings.lora is None:
        return None, "full fine-tuning (llama.cpp applies trained weights as a LoRA only)"
    if pick_device(settings.device) != "cpu":
        return None, "training on an accelerator (llama.cpp samples on the CPU here)"
    from adaptive_engine import gguf_lora
    from adaptive_engine.llamacpp_runtime import LlamaCppLoadError

    from .llamacpp_sampling import LlamaCppSampler

    try:
        if gguf_lora.architecture(gguf_base) not in gguf_lora.ARCHITECTURES:
            return None, f"LoRA on a base of architecture {gguf_lora.architecture(gguf_base)!r} (handled: llama)"
        return LlamaCppSampler(gguf_base), None
    except (LlamaCppLoadError, OSError) as exc:
        return None, str(exc)


def _trainer_class() -> Any:
    """GRPOTrainer whose sampling goes through ``fast_sampler`` (set after construction) when there is one."""
    import torch
    from trl import GRPOTrainer

    class Trainer(GRPOTrainer):
        fast_sampler: Any = None
        on_log: Callable[[str], None] = log.info
        _synced_step: int | None = None
        _generator: Any = None

        def _generate_single_turn(
            self,
            prompt_ids: list[list[int]],
            images: Any,
            multimodal_fields: Any,
            num_generations: int,
            has_tool_images: bool = False,
        ) -> tuple[list[list[int]], Any]:
            if self.fast_sampler is not None and (images or self.top_k or self.min_p or self.repetition_penalty != 1):
                self._fall_back("images, top_k, min_p or a repetition penalty asked of the sampler")
            sampler = self.fast_sampler
            if sampler is not None and self._synced_step != self.state.global_step:  # the weights moved
                from adaptive_engine.gguf_lora import LoraNotConvertible

                try:
                    self._sync_adapter(sampler)
                    self._synced_step = self.state.global_step
                except LoraNotConvertible as exc:
                    self._fall_back(f"the adapter cannot be written as a GGUF LoRA ({exc})")
                    sampler = None
            if sampler is None:
                generated: tuple[list[list[int]], Any] = super()._generate_single_turn(  # type: ignore[no-untyped-call]
                    prompt_ids, images, multimodal_fields, num_generations, has_tool_images
                )
                return generated
            if self._generator is None:  # the run's seed decides every sample
                self._generator = torch.Generator().manual_seed(self.args.seed)
            completions = sampler.sample(
                prompt_ids,
                temperature=float(self.temperature),
                top_p=float(self.top_p if self.top_p is not None else 1.0),
                max_tokens=self.max_completion_length or 256,  # TRL's default when unset
                stop_ids=list(self.eos_token_ids),
                generator=self._generator,
            )
            return completions, None

        def _fall_back(self, reason: str) -> None:
            self.on_log(f"grpo: sampling with TRL's generate from now on: {reason}")
            self.fast_sampler.close()
            self.fast_sampler = None

        def _sync_adapter(self, sampler: Any) -> None:
            from peft import get_peft_model_state_dict

            model = self.accelerator.unwrap_model(self.model)
            with torch.no_grad():
                sampler.set_adapter(model.peft_config["default"].to_dict(), get_peft_model_state_dict(model))

    return Trainer
