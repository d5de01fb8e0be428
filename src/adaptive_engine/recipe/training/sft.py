"""Supervised fine-tuning (LoRA by default, full optional) on prompt/completion conversations."""

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
from .data import check_template, sft_records


def sft_trainer_config(settings: TrainSettings, scratch: Path) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        **common_args(settings, scratch),
        max_length=settings.max_length,
        completion_only_loss=True,  # learn the replies, not the prompts
        dataset_num_proc=None,
    )


def train_sft(
    model_dir: Path | str,
    rows: Iterable[Mapping[str, Any]],
    output_dir: Path | str,
    settings: TrainSettings | None = None,
    *,
    on_metrics: MetricsSink | None = None,
    on_progress: ProgressSink | None = None,
    should_stop: StopCheck | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune ``model_dir`` on ``rows`` and save the adapter (or full model) to ``output_dir``."""
    from datasets import Dataset
    from trl import SFTTrainer

    settings = settings or TrainSettings()
    records = sft_records(rows)
    model, tokenizer, already_peft = load_for_training(model_dir, settings)
    check_template(records, tokenizer, str(model_dir))
    reporter = Reporter("sft", on_metrics, on_progress, should_stop)
    with scratch_dir() as scratch:
        trainer = SFTTrainer(
            model=model,
            args=sft_trainer_config(settings, Path(scratch)),
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
            method="sft",
            adapter=already_peft or settings.lora is not None,
            extra_manifest={"rows": len(records), **(manifest or {})},
        )
