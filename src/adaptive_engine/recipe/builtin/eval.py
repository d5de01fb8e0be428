"""Evaluation: run models over a dataset's prompts, grade every completion, report per model and grader.

Each model in ``models`` answers every prompt of ``dataset`` (``samples_per_prompt`` times) through the
platform's chat API; each completion is scored by every grader in ``graders``. The job writes an
EVALUATION artifact ``evaluation.json`` (a per-sample table and aggregates per model and grader) and
stores the completions with source EVALUATION, their scores as feedback under each grader's key.
A grader failing on one sample is recorded for that sample; it does not stop the evaluation.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.recipe.training import prompt_records
from adaptive_engine.recipe.training.platform import RecipeInputError, check_graders, dataset_rows, grade

JOB_KIND = "EVALUATION"


class Config(InputConfig):
    models: list[str] = Field(min_length=1, description="model keys to evaluate (attached to the use case)")
    dataset: str = Field(description="dataset key; its prompts are used, any completions are ignored")
    graders: list[str] = Field(min_length=1, description="grader keys")
    samples_per_prompt: int = Field(default=1, ge=1, le=32)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1)
    limit: int | None = Field(default=None, ge=1, description="evaluate only the first N prompts")
    concurrency: int = Field(default=8, ge=1, le=64)
    store_completions: bool = Field(default=True, description="store completions and scores as feedback")


def _check_models(ctx: RecipeContext, keys: list[str]) -> None:
    from adaptive_engine.sdk import errors

    for key in keys:
        try:
            model = ctx.client.models.get(key)
        except errors.NotFoundError as error:
            raise RecipeInputError(f"unknown model '{key}'") from error
        if not model.online or str(model.online).upper() != "ONLINE":
            ctx.log(f"eval: deploying {key}")
            ctx.client.models.deploy(key, wait=True)


def _generate(ctx: RecipeContext, config: Config, model: str, prompts: list[dict[str, Any]]) -> list[list[str]]:
    def one(row: dict[str, Any]) -> list[str]:
        response = ctx.client.chat.create(
            messages=row["prompt"],
            model=model,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            n=config.samples_per_prompt,
            store=False,
        )
        return [choice.message.content or "" for choice in response.choices]

    with ThreadPoolExecutor(config.concurrency) as pool:
        return list(pool.map(one, prompts))


def _aggregate(samples: list[dict[str, Any]], models: list[str], graders: list[str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for model in models:
        table[model] = {}
        for grader in graders:
            scores = [s["scores"][grader] for s in samples if s["model"] == model]
            valid = [v for v in scores if v is not None]
            mean = sum(valid) / len(valid) if valid else None
            std = math.sqrt(sum((v - mean) ** 2 for v in valid) / len(valid)) if valid else None
            table[model][grader] = {"mean": mean, "std": std, "count": len(valid), "failed": len(scores) - len(valid)}
    return table


@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    graders = check_graders(ctx, config.graders)
    metric_of = {g.key: g.metric.key for g in graders}
    prompts = prompt_records(dataset_rows(ctx, config.dataset))
    if config.limit:
        prompts = prompts[: config.limit]
    _check_models(ctx, config.models)
    total = len(config.models) * len(prompts)
    ctx.log(
        f"eval: {len(config.models)} models x {len(prompts)} prompts x {config.samples_per_prompt} samples, "
        f"graders {config.graders}"
    )
    samples: list[dict[str, Any]] = []
    started = time.perf_counter()
    model_seconds: dict[str, float] = {}
    for m, model in enumerate(config.models):
        model_started = time.perf_counter()
        outputs = _generate(ctx, config, model, prompts)
        batch = [
            {
                "model": model,
                "prompt_index": i,
                "messages": row["prompt"],
                "completion": text,
                "metadata": row.get("metadata") if isinstance(row.get("metadata"), dict) else None,
                "scores": {},
                "errors": {},
            }
            for i, (row, texts) in enumerate(zip(prompts, outputs, strict=True))
            for text in texts
        ]
        for grader in config.graders:
            results = grade(
                ctx,
                grader,
                [{"messages": s["messages"], "completion": s["completion"], "metadata": s["metadata"]} for s in batch],
            )
            for sample, result in zip(batch, results, strict=True):
                sample["scores"][grader] = result.score
                if result.error:
                    sample["errors"][grader] = result.error
                if result.reasoning:
                    sample.setdefault("reasoning", {})[grader] = result.reasoning
        samples.extend(batch)
        model_seconds[model] = time.perf_counter() - model_started  # generation and grading
        ctx.report_progress(0.9 * (m + 1) / len(config.models), f"eval: {model} done ({len(prompts)} prompts)")
    aggregates = _aggregate(samples, config.models, config.graders)
    for step, model in enumerate(config.models):
        values = {f"{g}/mean": a["mean"] for g, a in aggregates[model].items() if a["mean"] is not None}
        if values:
            ctx.log_metrics(step, values)
    if config.store_completions and ctx.job_id is not None:
        from adaptive_engine.sdk.resources.training_runtime import TrainingRuntime

        runtime = TrainingRuntime(ctx.client)
        bodies = [
            {
                "use_case": ctx.use_case,
                "messages": s["messages"],
                "completion": s["completion"],
                "model_service": s["model"],
                "labels": {"evaluation": "true"},
                "feedbacks": [{"metric": metric_of[g], "value": v} for g, v in s["scores"].items() if v is not None],
            }
            for s in samples
        ]
        ids: list[str] = []
        for start in range(0, len(bodies), 500):
            ids.extend(runtime.record_evaluation(ctx.job_id, bodies[start : start + 500]))
        for sample, completion_id in zip(samples, ids, strict=True):
            sample["completion_id"] = completion_id
    report = {
        "models": config.models,
        "graders": config.graders,
        "dataset": config.dataset,
        "prompts": len(prompts),
        "samples_per_prompt": config.samples_per_prompt,
        "temperature": config.temperature,
        "seconds": time.perf_counter() - started,
        "model_seconds": model_seconds,
        "aggregates": aggregates,
        "samples": samples,
    }
    ctx.save_artifact(
        "evaluation.json",
        json.dumps(report, indent=1).encode(),
        kind="EVALUATION",
        metadata={"aggregates": aggregates, "samples": len(samples)},
    )
    ctx.report_progress(1.0, f"eval: {len(samples)} samples graded ({total} model-prompt pairs)")
