"""Supervised fine-tuning (LoRA by default, full optional) from a dataset or from logged interactions.

Rows come from ``dataset`` (messages ending with the assistant reply, or prompt + completion), or from
the use case's logged interactions selected by ``feedback_filter`` (e.g. ``{"feedback_key": "correct",
"min_value": 1}``: learn from the answers users or graders scored well). The adapter is saved and
registered as ``output_model_key`` with its lineage (base model, recipe, job, dataset or filter).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.recipe.training import LoraSettings, TrainSettings, train_sft
from adaptive_engine.recipe.training.platform import (
    FeedbackFilter,
    RecipeInputError,
    check_new_model_key,
    dataset_rows,
    feedback_rows,
    output_dir,
    register,
    reporting,
    resolve_model_dir,
)

JOB_KIND = "TRAINING"


class Config(InputConfig):
    output_model_key: str = Field(min_length=1, max_length=200, description="key of the trained model")
    output_model_name: str | None = None
    base_model: str = Field(default="smollm2-135m-instruct", description="model to fine-tune (key)")
    dataset: str | None = Field(default=None, description="dataset key (messages or prompt + completion rows)")
    feedback_filter: FeedbackFilter | None = Field(default=None, description="train on logged interactions instead")
    lora: bool = Field(default=True, description="train a LoRA adapter (False: every weight)")
    lora_rank: int = Field(default=16, ge=1, le=256)
    lora_alpha: int = Field(default=32, ge=1)
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = Field(default=-1, description="> 0 overrides epochs")
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=8, ge=1)
    max_length: int = Field(default=512, ge=8)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> Config:
        if (self.dataset is None) == (self.feedback_filter is None):
            raise ValueError("give exactly one of dataset or feedback_filter")
        return self


@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    check_new_model_key(ctx, config.output_model_key)
    source: dict[str, Any]
    if config.dataset is not None:
        rows, source = dataset_rows(ctx, config.dataset), {"dataset": config.dataset}
    else:
        assert config.feedback_filter is not None
        rows, source = (
            feedback_rows(ctx, config.feedback_filter),
            {"feedback_filter": config.feedback_filter.describe()},
        )
    from adaptive_engine.recipe.training import sft_records

    sft_records(rows)  # refuse the wrong kind of rows before loading anything
    ctx.log(f"sft: {len(rows)} rows from {source}")
    base_dir = resolve_model_dir(ctx, config.base_model)
    settings = TrainSettings(
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        lora=LoraSettings(r=config.lora_rank, alpha=config.lora_alpha) if config.lora else None,
    )
    folder = output_dir(ctx, config.output_model_key)
    lineage = {"method": "sft", "base_model": config.base_model, "rows": len(rows), **source}
    result = train_sft(base_dir, rows, folder, settings, manifest=lineage, **reporting(ctx))
    ctx.log(
        f"sft: {result.steps} steps, {result.train_tokens} tokens in {result.seconds:.1f}s "
        f"({result.tokens_per_second:.1f} tokens/s)"
    )
    register(
        ctx,
        folder,
        config.output_model_key,
        config.output_model_name,
        config.base_model,
        {**lineage, "steps": result.steps, "final_loss": result.metrics.get("loss")},
    )


__all__ = ["Config", "RecipeInputError", "main"]
