"""Preference optimisation (DPO, LoRA by default) from a preference dataset or from logged preferences.

Pairs come from ``dataset`` (rows with prompt, chosen and rejected), from the use case's logged
``log_preference`` comparisons under ``feedback_key``, or, with ``pairs_from_metric``, from logged
completions of the same prompt that ``feedback_key`` scored differently (better one chosen); for noisy
feedback ``min_margin`` pools identical completions and pairs only scores at least that far apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.recipe.training import LoraSettings, TrainSettings, dpo_records, train_dpo
from adaptive_engine.recipe.training.platform import (
    check_new_model_key,
    dataset_rows,
    output_dir,
    preference_rows,
    register,
    reporting,
    resolve_model_dir,
)

JOB_KIND = "TRAINING"


class Config(InputConfig):
    output_model_key: str = Field(min_length=1, max_length=200)
    output_model_name: str | None = None
    base_model: str = "smollm2-135m-instruct"
    dataset: str | None = Field(default=None, description="dataset key of preference rows")
    feedback_key: str | None = Field(default=None, description="learn from logged preferences under this key")
    pairs_from_metric: bool = Field(default=False, description="pair logged completions of a prompt by their metric")
    min_margin: float | None = Field(
        default=None,
        gt=0,
        description="with pairs_from_metric: pool identical completions, pair only scores this far apart",
    )
    limit: int = Field(default=2000, ge=1)
    beta: float = Field(default=0.1, gt=0)
    lora: bool = True
    lora_rank: int = Field(default=16, ge=1, le=256)
    lora_alpha: int = Field(default=32, ge=1)
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=8, ge=1)
    max_length: int = Field(default=512, ge=8)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> Config:
        if (self.dataset is None) == (self.feedback_key is None):
            raise ValueError("give exactly one of dataset or feedback_key")
        if self.min_margin is not None and not self.pairs_from_metric:
            raise ValueError("min_margin applies to pairs_from_metric only")
        return self


@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    check_new_model_key(ctx, config.output_model_key)
    source: dict[str, Any]
    if config.dataset is not None:
        rows, source = dataset_rows(ctx, config.dataset), {"dataset": config.dataset}
    else:
        assert config.feedback_key is not None
        rows = preference_rows(ctx, config.feedback_key, config.limit, config.pairs_from_metric, config.min_margin)
        source = {"feedback_key": config.feedback_key, "pairs_from_metric": config.pairs_from_metric}
        if config.min_margin is not None:
            source["min_margin"] = config.min_margin
    dpo_records(rows)  # a dataset of the wrong kind is refused here, before any loading
    ctx.log(f"dpo: {len(rows)} pairs from {source}")
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
    lineage = {"method": "dpo", "base_model": config.base_model, "pairs": len(rows), "beta": config.beta, **source}
    result = train_dpo(base_dir, rows, folder, settings, beta=config.beta, manifest=lineage, **reporting(ctx))
    ctx.log(f"dpo: {result.steps} steps in {result.seconds:.1f}s")
    register(
        ctx,
        folder,
        config.output_model_key,
        config.output_model_name,
        config.base_model,
        {**lineage, "steps": result.steps, "final_loss": result.metrics.get("loss")},
    )
