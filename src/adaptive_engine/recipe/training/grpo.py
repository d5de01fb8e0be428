"""Group-relative policy optimisation: sample a group per prompt, score each with a reward function, learn.

The reward function gets the prompts (message lists), the completion texts and the rows' other fields:
``reward(prompts, completions, rows) -> list[float | None]`` (None: no score for that sample).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
) -> TrainResult:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

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
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[wrap_reward(reward)],
            args=config,
            train_dataset=Dataset.from_list(records),
            processing_class=tokenizer,
            peft_config=None if already_peft else peft_config(settings),
            callbacks=[reporter.callback],
        )
        return run_and_save(
            trainer,
            reporter,
            Path(output_dir),
            tokenizer,
            method="grpo",
            adapter=already_peft or settings.lora is not None,
            extra_manifest={"rows": len(records), "num_generations": grpo.num_generations, **(manifest or {})},
        )
