"""Direct preference optimisation on (prompt, chosen, rejected) pairs; with LoRA the reference is the base."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .base import (
    MetricsSink,
    ProgressSink,
    Reporter,
    StopCheck,
    TrainResult,
    TrainSettings,
    common_args,
    load_for_training,
    peft_config,
    run_and_save,
    scratch_dir,
)
from .data import check_template, dpo_records


def train_dpo(
    model_dir: Path | str,
    rows: Iterable[Mapping[str, Any]],
    output_dir: Path | str,
    settings: TrainSettings | None = None,
    *,
    beta: float = 0.1,
    on_metrics: MetricsSink | None = None,
    on_progress: ProgressSink | None = None,
    should_stop: StopCheck | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> TrainResult:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    settings = settings or TrainSettings(learning_rate=5e-5)
    records = dpo_records(rows)
    model, tokenizer, already_peft = load_for_training(model_dir, settings)
    check_template(records, tokenizer, str(model_dir))
    reporter = Reporter("dpo", on_metrics, on_progress, should_stop)
    with scratch_dir() as scratch:
        config = DPOConfig(**common_args(settings, Path(scratch)), max_length=settings.max_length, beta=beta)
        trainer = DPOTrainer(
            model=model,
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
            method="dpo",
            adapter=already_peft or settings.lora is not None,
            extra_manifest={"rows": len(records), "beta": beta, **(manifest or {})},
        )
