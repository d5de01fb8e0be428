"""Online RL (GRPO, LoRA by default) with graders as the reward.

Prompts come from ``dataset`` (prompt or messages rows; other fields reach the graders as ``metadata``
when a row has a ``metadata`` object), or from the prompts of the use case's logged interactions. For
each prompt a group of completions is sampled, each is scored by the ``graders`` (judges, external
reward servers or custom graders, through the grading service), and the model learns from the scores.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.recipe.training import GrpoSettings, LoraSettings, TrainSettings, prompt_records, train_grpo
from adaptive_engine.recipe.training.platform import (
    RecipeInputError,
    check_graders,
    check_new_model_key,
    dataset_rows,
    grader_reward,
    iter_interactions,
    output_dir,
    register,
    reporting,
    resolve_model,
)

JOB_KIND = "TRAINING"


class Config(InputConfig):
    output_model_key: str = Field(min_length=1, max_length=200)
    output_model_name: str | None = None
    base_model: str = "smollm2-135m-instruct"
    graders: list[str] = Field(min_length=1, description="grader keys; the reward is their mean score")
    dataset: str | None = Field(default=None, description="dataset of prompts (default: logged prompts)")
    prompt_limit: int = Field(default=500, ge=1)
    num_generations: int = Field(default=4, ge=2, description="completions sampled per prompt")
    max_completion_length: int = Field(default=64, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    beta: float = Field(default=0.0, ge=0, description="KL penalty to the base")
    steps_per_generation: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "optimizer steps served by one round of sampling (larger rounds sample faster, slightly off-policy)"
        ),
    )
    lora: bool = True
    lora_rank: int = Field(default=16, ge=1, le=256)
    lora_alpha: int = Field(default=32, ge=1)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(default=2e-5, gt=0)
    batch_size: int = Field(default=8, ge=2, description="completions per step (a multiple of num_generations)")
    seed: int = 0


def logged_prompts(ctx: RecipeContext, limit: int) -> list[dict[str, Any]]:
    seen, rows = set(), []
    for interaction in iter_interactions(ctx, {}, limit * 20):
        key = interaction.prompt_hash
        if key in seen or not interaction.chat_messages:
            continue
        seen.add(key)
        rows.append({"prompt": [{"role": m.role, "content": m.content} for m in interaction.chat_messages]})
        if len(rows) >= limit:
            break
    if not rows:
        raise RecipeInputError("the use case has no logged interactions to take prompts from")
    return rows


@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    check_new_model_key(ctx, config.output_model_key)
    check_graders(ctx, config.graders)
    if config.batch_size % config.num_generations:
        raise RecipeInputError(
            f"batch_size ({config.batch_size}) must be a multiple of num_generations ({config.num_generations})"
        )
    if config.dataset is not None:
        rows, source = dataset_rows(ctx, config.dataset)[: config.prompt_limit], {"dataset": config.dataset}
    else:
        rows, source = logged_prompts(ctx, config.prompt_limit), {"prompts": "logged interactions"}
    rows = [{"prompt": r["prompt"], "metadata": json.dumps(r.get("metadata") or {})} for r in prompt_records(rows)]
    ctx.log(f"grpo: {len(rows)} prompts from {source}, graders {config.graders}")
    base_dir, gguf_base = resolve_model(ctx, config.base_model)
    settings = TrainSettings(
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        lora=LoraSettings(r=config.lora_rank, alpha=config.lora_alpha) if config.lora else None,
    )
    grpo = GrpoSettings(
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        steps_per_generation=config.steps_per_generation,
    )
    folder = output_dir(ctx, config.output_model_key)
    lineage = {
        "method": "grpo",
        "base_model": config.base_model,
        "graders": config.graders,
        "prompts": len(rows),
        **source,
    }
    result = train_grpo(
        base_dir,
        rows,
        grader_reward(ctx, config.graders),
        folder,
        settings,
        grpo,
        manifest=lineage,
        gguf_base=gguf_base,
        on_log=ctx.log,
        **reporting(ctx),
    )
    ctx.log(f"grpo: {result.steps} steps in {result.seconds:.1f}s, last reward {result.metrics.get('reward')}")
    register(
        ctx,
        folder,
        config.output_model_key,
        config.output_model_name,
        config.base_model,
        {**lineage, "steps": result.steps, "final_reward": result.metrics.get("reward")},
    )
