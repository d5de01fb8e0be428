"""What every training loop shares: settings, model loading, progress/cancel callback, atomic saving.

Training runs synchronously (call it from a worker thread inside an async recipe). Progress goes to two
plain callables, ``on_metrics(step, values)`` and ``on_progress(fraction, message)``, which the recipe
bridges to its ``RecipeContext``; ``should_stop()`` is polled after every optimizer step.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptive_engine.devices import pick_device, training_bf16

MetricsSink = Callable[[int, dict[str, float]], None]
ProgressSink = Callable[[float, str], None]
StopCheck = Callable[[], bool]

MANIFEST = "training.json"


class TrainingError(Exception):
    """Base of the errors training raises on purpose."""


class TrainingInputError(TrainingError, ValueError):
    """The data or settings cannot be trained on; the message names the row and the problem."""


class TrainingCancelled(TrainingError):
    """``should_stop()`` returned True: training stopped and nothing was saved."""


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass
class TrainSettings:
    """Hyper-parameters shared by sft, dpo and grpo. ``lora=None`` trains every weight (full fine-tuning)."""

    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup_steps: float = 0  # < 1: a fraction of the steps
    weight_decay: float = 0.0
    seed: int = 0
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    # Recomputing activations saves memory a 135M model does not need and costs about a third more compute.
    gradient_checkpointing: bool = False
    device: str | None = None  # None: cuda when available, else cpu

    def __post_init__(self) -> None:
        if isinstance(self.lora, Mapping):
            self.lora = LoraSettings(**self.lora)
        problems = []
        if self.learning_rate <= 0:
            problems.append("learning_rate must be > 0")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("epochs or max_steps must be > 0")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch_size and grad_accum must be >= 1")
        if self.max_length < 8:
            problems.append("max_length must be >= 8")
        if problems:
            raise TrainingInputError("; ".join(problems))


@dataclass
class TrainResult:
    output_dir: Path
    method: str
    steps: int
    seconds: float
    train_tokens: int
    tokens_per_second: float
    metrics: dict[str, float]
    adapter: bool

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base_dir(adapter_dir: Path) -> Path:
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base or not Path(base).is_dir():
        raise TrainingInputError(f"the adapter in {adapter_dir} names no local base model (got {base!r})")
    return Path(base)


def load_for_training(source: Path | str, settings: TrainSettings) -> tuple[Any, Any, bool]:
    """(model, tokenizer, already_peft) from a transformers folder or a PEFT adapter folder.

    An adapter folder is loaded on its base, trainable, so training continues that adapter (its saved
    result still names the original base, never a copy of it).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(source)
    if not source.is_dir():
        raise TrainingInputError(f"model folder not found: {source}")
    device = pick_device(settings.device)
    dtype = "auto" if device != "cpu" else None
    adapter = is_adapter_dir(source)
    base_dir = adapter_base_dir(source) if adapter else source
    if not (base_dir / "config.json").is_file():
        raise TrainingInputError(f"{base_dir} is not a transformers model folder (no config.json)")
    tokenizer_dir = source if (source / "tokenizer_config.json").is_file() else base_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": dtype} if dtype else {}
    # A transformers model, or a PeftModel wrapping one: both train the same way.
    model: Any = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source, is_trainable=True)
    model.to(device)
    return model, tokenizer, adapter


def peft_config(settings: TrainSettings) -> Any:
    if settings.lora is None:
        return None
    from peft import LoraConfig

    lora = settings.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def common_args(settings: TrainSettings, scratch: Path) -> dict[str, Any]:
    """Keyword arguments every TRL config gets from our settings."""
    device = pick_device(settings.device)
    return {
        "output_dir": str(scratch),
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "warmup_steps": settings.warmup_steps,
        "weight_decay": settings.weight_decay,
        "seed": settings.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "bf16": training_bf16(device),
        "dataloader_num_workers": 0,
        "gradient_checkpointing": settings.gradient_checkpointing,
    }


class Reporter:
    """A transformers ``TrainerCallback`` that forwards logs as metrics (with tokens/s) and polls for cancel."""

    def __init__(
        self,
        method: str,
        on_metrics: MetricsSink | None,
        on_progress: ProgressSink | None,
        should_stop: StopCheck | None,
    ) -> None:
        from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

        reporter = self

        class _Callback(TrainerCallback):
            def on_train_begin(
                self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
            ) -> None:
                reporter._begin(state)

            def on_step_end(
                self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
            ) -> None:
                if reporter._should_stop is not None and reporter._should_stop():
                    reporter.cancelled = True
                    control.should_training_stop = True
                    control.should_epoch_stop = True

            def on_log(
                self,
                args: TrainingArguments,
                state: TrainerState,
                control: TrainerControl,
                logs: dict[str, Any] | None = None,
                **kwargs: Any,
            ) -> None:
                reporter._log(state, logs or {})

        self.callback = _Callback()
        self.method = method
        self._on_metrics = on_metrics
        self._on_progress = on_progress
        self._should_stop = should_stop
        self.cancelled = False
        self.started = time.perf_counter()
        self.last_metrics: dict[str, float] = {}  # name -> its last logged value
        self.total_tokens = 0
        self._last_time = self.started
        self._last_tokens = 0

    def _begin(self, state: Any) -> None:
        self.started = self._last_time = time.perf_counter()
        if self._on_progress is not None:
            self._on_progress(0.0, f"{self.method}: training {state.max_steps} steps")

    def _log(self, state: Any, logs: dict[str, Any]) -> None:
        now = time.perf_counter()
        values = {k: float(v) for k, v in logs.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if "train_runtime" in values:  # the trainer's closing summary
            return
        tokens = int(values.get("num_tokens", self._last_tokens))
        elapsed = now - self._last_time
        if tokens > self._last_tokens and elapsed > 0:
            values["tokens_per_second"] = (tokens - self._last_tokens) / elapsed
        self._last_time, self._last_tokens = now, tokens
        self.total_tokens = tokens
        # The last measured value of each metric: a step may log only some (a GRPO step that learns from an
        # earlier round of samples measures no reward), and the result must not lose the others.
        self.last_metrics = {**self.last_metrics, **values}
        if self._on_metrics is not None:
            self._on_metrics(int(state.global_step), values)
        if self._on_progress is not None and state.max_steps:
            fraction = min(1.0, state.global_step / state.max_steps)
            shown = ", ".join(f"{k}={values[k]:.4g}" for k in ("loss", "reward") if k in values)
            self._on_progress(fraction, f"{self.method}: step {state.global_step}/{state.max_steps} {shown}".strip())


def run_and_save(
    trainer: Any,
    reporter: Reporter,
    output_dir: Path,
    tokenizer: Any,
    *,
    method: str,
    adapter: bool,
    extra_manifest: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train, then save the adapter (or the full model) into ``output_dir`` atomically.

    ``output_dir`` appears only once everything in it is written, so a caller that registers the model
    after this returns never registers a half-saved one; a cancelled run saves nothing.
    """
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the Reporter reports; no raw log dicts on stdout
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise TrainingInputError(f"output folder already exists: {output_dir}")
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    if reporter.cancelled:
        raise TrainingCancelled(f"{method} cancelled at step {trainer.state.global_step}")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        model = trainer.model
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        result = TrainResult(
            output_dir=output_dir,
            method=method,
            steps=int(trainer.state.global_step),
            seconds=seconds,
            train_tokens=reporter.total_tokens,
            tokens_per_second=reporter.total_tokens / seconds if seconds > 0 else 0.0,
            metrics=reporter.last_metrics,
            adapter=adapter,
        )
        manifest = result.manifest() | dict(extra_manifest or {})
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="ae-train-")
