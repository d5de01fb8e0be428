"""The glue between the training cores and a running job: weights of registered models, rows from
datasets or from logged traffic selected by feedback, graders as reward, progress into the context.

Every function fails with :class:`RecipeInputError` and a message naming the problem (unknown model,
wrong dataset kind, empty selection, unknown grader) before any training starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .base import TrainingInputError

if TYPE_CHECKING:
    from adaptive_engine.recipe.context import RecipeContext

PAGE = 200


class RecipeInputError(TrainingInputError):
    """The recipe's arguments name something that does not exist or does not fit."""


class FeedbackFilter(BaseModel):
    """Logged interactions of the use case whose feedback ``feedback_key`` is within [min_value, max_value]."""

    model_config = ConfigDict(extra="forbid")

    feedback_key: str
    min_value: float | None = Field(default=None, description="keep interactions scored >= this")
    max_value: float | None = Field(default=None, description="keep interactions scored <= this")
    models: list[str] | None = Field(default=None, description="only completions of these models")
    min_copies: int | None = Field(
        default=None,
        ge=2,
        description="for noisy feedback: pool identical completions of a prompt (their score is the mean of all "
        "their logged values) and keep only those logged at least this many times whose pooled score passes",
    )
    limit: int = Field(default=2000, ge=1, le=100_000)

    def describe(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# ---------------------------------------------------------------------------------------------- models


def resolve_model_dir(ctx: RecipeContext, model: str) -> Path:
    """A local folder with ``model``'s weights (a transformers folder or a PEFT adapter on its base)."""
    return resolve_model(ctx, model)[0]


def resolve_model(ctx: RecipeContext, model: str) -> tuple[Path, Path | None]:
    """(:func:`resolve_model_dir`, the GGUF file its base was dequantized from or None): recipes that sample
    while they train (grpo) run llama.cpp on that file."""
    from adaptive_engine.models_bundled import BUNDLED_CHAT_KEY, bundled_chat_gguf, bundled_chat_model_dir

    if ctx.job_id is None:  # local development run: the bundled key or a folder
        if model == BUNDLED_CHAT_KEY:
            folder, gguf_file = bundled_chat_gguf()
            return bundled_chat_model_dir(), folder / gguf_file
        if Path(model).is_dir():
            return Path(model), None
        raise RecipeInputError(f"unknown base model '{model}' (locally: '{BUNDLED_CHAT_KEY}' or a folder)")
    from adaptive_engine.sdk import errors
    from adaptive_engine.sdk.resources.training_runtime import TrainingRuntime

    try:
        weights = TrainingRuntime(ctx.client).model_weights(ctx.job_id, model)
    except errors.NotFoundError as error:
        raise RecipeInputError(f"unknown base model '{model}'") from error
    except errors.AdaptiveError as error:
        raise RecipeInputError(f"base model '{model}' cannot be trained here: {error}") from error
    base = weights.get("base") if weights["format"] == "adapter" else weights
    gguf = Path(base["path"]) / base["gguf_file"] if base and base.get("format") == "gguf" else None
    return _materialize(weights), gguf


def _materialize(weights: dict[str, Any]) -> Path:
    from adaptive_engine.models_bundled import convert_gguf

    if weights["format"] == "gguf":
        return convert_gguf(Path(weights["path"]), weights["gguf_file"], Path(weights["cache_dir"]))
    if weights["format"] == "adapter" and weights.get("base") and weights["base"]["format"] == "gguf":
        _materialize(weights["base"])  # the adapter names the converted folder as its base
    return Path(weights["path"])


# ---------------------------------------------------------------------------------------------- rows


def dataset_rows(ctx: RecipeContext, key: str) -> list[dict[str, Any]]:
    from adaptive_engine.sdk import errors

    try:
        rows = list(ctx.load_dataset(key))
    except errors.NotFoundError as error:
        raise RecipeInputError(f"dataset '{key}' not found") from error
    except FileNotFoundError as error:
        raise RecipeInputError(f"dataset '{key}' not found") from error
    if not rows:
        raise RecipeInputError(f"dataset '{key}' is empty")
    return rows


def _messages(interaction: Any) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in interaction.chat_messages]


def iter_interactions(ctx: RecipeContext, filters: dict[str, Any], limit: int) -> Iterator[Any]:
    after = None
    seen = 0
    while seen < limit:
        page = ctx.client.interactions.list(filters=filters, page={"first": min(PAGE, limit - seen), "after": after})
        for node in page.nodes:
            yield node
            seen += 1
        if not page.page_info.has_next_page or not page.nodes:
            return
        after = page.page_info.end_cursor


def _score(interaction: Any, feedback_key: str) -> float | None:
    values = [
        fb.value for fb in interaction.direct_feedbacks if fb.metric is not None and fb.metric.key == feedback_key
    ]
    return sum(values) / len(values) if values else None


def _check_key(ctx: RecipeContext, feedback_key: str) -> None:
    from adaptive_engine.sdk import errors

    try:
        ctx.client.feedback.get_key(feedback_key)
    except errors.NotFoundError as error:
        raise RecipeInputError(f"unknown feedback key '{feedback_key}'") from error


def feedback_rows(ctx: RecipeContext, selection: FeedbackFilter) -> list[dict[str, Any]]:
    """sft rows from logged interactions whose feedback passes ``selection``."""
    _check_key(ctx, selection.feedback_key)
    fb: dict[str, Any] = {"metric": selection.feedback_key}
    if selection.min_copies is None:  # pooling needs every copy's value, the failing ones too
        if selection.min_value is not None:
            fb["gte"] = selection.min_value
        if selection.max_value is not None:
            fb["lte"] = selection.max_value
    filters: dict[str, Any] = {"feedbacks": [fb]}
    if selection.models:
        filters["models"] = selection.models
    interactions = [i for i in iter_interactions(ctx, filters, selection.limit) if i.completion and i.chat_messages]
    if selection.min_copies is not None:
        interactions = _agreed(interactions, selection)
    rows = [{"prompt": _messages(i), "completion": i.completion} for i in interactions]
    if not rows:
        raise RecipeInputError(f"no logged interactions match the feedback filter {selection.describe()}")
    return rows


def _agreed(interactions: list[Any], selection: FeedbackFilter) -> list[Any]:
    """The copies of the completions that people agree on: a right answer tends to come back word for word
    and be judged right most times, while a wrong one judged right by mistake rarely repeats with the same
    mistake. A completion is kept, every copy of it, when it has at least ``min_copies`` copies and its pooled
    score (:func:`_pool_copies`) is in range."""
    assert selection.min_copies is not None
    kept: list[Any] = []
    for by_text in _pool_copies(interactions, selection.feedback_key).values():
        for copies in by_text.values():
            pooled = _mean(copies)
            if (
                len(copies) >= selection.min_copies
                and (selection.min_value is None or pooled >= selection.min_value)
                and (selection.max_value is None or pooled <= selection.max_value)
            ):
                kept.extend(interaction for _, interaction in copies)
    return kept


def _pool_copies(interactions: Iterable[Any], feedback_key: str) -> dict[str, dict[str, list[tuple[float, Any]]]]:
    """Scored interactions by prompt, then by completion text: each completion's logged copies with their
    scores. Pooled (their mean), a repeated answer outvotes a wrong judgement of one copy."""
    texts: dict[str, dict[str, list[tuple[float, Any]]]] = {}
    for interaction in interactions:
        score = _score(interaction, feedback_key)
        if score is None or not interaction.completion:
            continue
        key = interaction.prompt_hash or json.dumps(_messages(interaction))
        texts.setdefault(key, {}).setdefault(interaction.completion, []).append((score, interaction))
    return texts


def _mean(copies: list[tuple[float, Any]]) -> float:
    return sum(score for score, _ in copies) / len(copies)


def preference_rows(
    ctx: RecipeContext,
    feedback_key: str,
    limit: int = 2000,
    pairs_from_metric: bool = False,
    min_margin: float | None = None,
) -> list[dict[str, Any]]:
    """dpo rows from logged preferences under ``feedback_key`` (``log_preference``), or, with
    ``pairs_from_metric``, from interactions of the same prompt scored differently on that metric
    (``min_margin``: see :func:`_margin_pairs`)."""
    _check_key(ctx, feedback_key)
    if pairs_from_metric:
        if min_margin is not None:
            return _margin_pairs(ctx, feedback_key, limit, min_margin)
        return _metric_pairs(ctx, feedback_key, limit)
    rows, seen = [], set()
    for interaction in iter_interactions(ctx, {"comparisons": [{"metric": feedback_key}]}, limit):
        for comparison in interaction.comparison_feedbacks:
            if (
                comparison.id in seen
                or comparison.tied
                or comparison.metric is None
                or comparison.metric.key != feedback_key
            ):
                continue
            seen.add(comparison.id)
            chosen, rejected = comparison.prefered_completion, comparison.other_completion
            if chosen is None or rejected is None or not chosen.completion or not rejected.completion:
                continue
            if chosen.completion == rejected.completion:
                continue
            rows.append(
                {"prompt": _messages(interaction), "chosen": chosen.completion, "rejected": rejected.completion}
            )
    if not rows:
        raise RecipeInputError(f"no logged preferences (log_preference) under feedback key '{feedback_key}'")
    return rows


def _metric_pairs(ctx: RecipeContext, feedback_key: str, limit: int) -> list[dict[str, Any]]:
    by_prompt: dict[str, list[tuple[float, Any]]] = {}
    for interaction in iter_interactions(ctx, {"feedbacks": [{"metric": feedback_key}]}, limit):
        score = _score(interaction, feedback_key)
        if score is None or not interaction.completion:
            continue
        key = interaction.prompt_hash or json.dumps(_messages(interaction))
        by_prompt.setdefault(key, []).append((score, interaction))
    rows = []
    for group in by_prompt.values():
        best = [i for s, i in group if s == max(s for s, _ in group)]
        worst = [i for s, i in group if s == min(s for s, _ in group)]
        if max(s for s, _ in group) == min(s for s, _ in group):
            continue
        # Pair every better completion with a worse one, cycling, without repeating identical texts.
        for n, chosen in enumerate(best):
            rejected = worst[n % len(worst)]
            if chosen.completion != rejected.completion:
                rows.append({"prompt": _messages(chosen), "chosen": chosen.completion, "rejected": rejected.completion})
    if not rows:
        raise RecipeInputError(f"no prompt has completions scored differently on '{feedback_key}' to pair")
    return rows


def _margin_pairs(ctx: RecipeContext, feedback_key: str, limit: int, min_margin: float) -> list[dict[str, Any]]:
    """Pairs only where the margin is clear, for noisy feedback: identical completions of a prompt are pooled
    (their score is the mean of all their logged values, so a repeated answer outvotes a wrong judgement of
    one copy), and a completion is paired with a worse one only when its pooled score is at least
    ``min_margin`` higher. One pair per logged copy of the better completion, worst partners first."""
    texts = _pool_copies(iter_interactions(ctx, {"feedbacks": [{"metric": feedback_key}]}, limit), feedback_key)
    rows = []
    for by_text in texts.values():
        pooled = sorted(((_mean(copies), text, copies) for text, copies in by_text.items()), key=lambda item: item[0])
        for score, text, copies in pooled:
            worse = [other for other in pooled if other[0] <= score - min_margin and other[1] != text]
            for n, (_, interaction) in enumerate(copies if worse else []):
                rows.append({"prompt": _messages(interaction), "chosen": text, "rejected": worse[n % len(worse)][1]})
    if not rows:
        raise RecipeInputError(
            f"no prompt has completions whose '{feedback_key}' scores differ by at least {min_margin:g} to pair"
        )
    return rows


# ---------------------------------------------------------------------------------------------- graders


def check_graders(ctx: RecipeContext, keys: Sequence[str]) -> list[Any]:
    from adaptive_engine.sdk import errors

    if not keys:
        raise RecipeInputError("name at least one grader")
    found = []
    for key in keys:
        try:
            found.append(ctx.client.graders.get(grader_key=key))
        except errors.NotFoundError as error:
            raise RecipeInputError(f"unknown grader '{key}'") from error
    return found


def grade(ctx: RecipeContext, grader: str, samples: list[dict[str, Any]]) -> list[Any]:
    """Grade samples in batches; one GradeResult per sample (``score`` None where it failed)."""
    results: list[Any] = []
    for start in range(0, len(samples), 100):
        results.extend(ctx.client.graders.grade_batch(grader_key=grader, samples=samples[start : start + 100]))
    return results


def _metadata(row: dict[str, Any]) -> dict[str, Any] | None:
    meta = row.get("metadata")
    if isinstance(meta, str):  # rows carry it as JSON: a table column cannot hold objects of any shape
        meta = json.loads(meta) if meta else None
    return meta or None


def grader_reward(ctx: RecipeContext, graders: Sequence[str], weights: Sequence[float] | None = None) -> Any:
    """A grpo reward function: the weighted mean of the graders' scores (a failed sample scores None)."""
    weights = list(weights or [1.0] * len(graders))
    if len(weights) != len(graders):
        raise ValueError(f"grader_reward: {len(graders)} graders but {len(weights)} weights")

    def reward(
        prompts: list[list[dict[str, str]]], completions: list[str], rows: list[dict[str, Any]]
    ) -> list[float | None]:
        totals = [0.0] * len(completions)
        missing = [False] * len(completions)
        for grader, weight in zip(graders, weights, strict=True):
            samples = [
                {"messages": p, "completion": c, "metadata": _metadata(r)}
                for p, c, r in zip(prompts, completions, rows, strict=True)
            ]
            for i, result in enumerate(grade(ctx, grader, samples)):
                if result.score is None or not math.isfinite(result.score):
                    missing[i] = True
                else:
                    totals[i] += weight * result.score
        return [None if missing[i] else totals[i] / sum(weights) for i in range(len(completions))]

    return reward


# ---------------------------------------------------------------------------------------------- reporting


def reporting(ctx: RecipeContext) -> dict[str, Any]:
    """Callbacks that send training metrics and progress to the job."""

    def on_metrics(step: int, values: dict[str, float]) -> None:
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        if finite:
            ctx.log_metrics(step, finite)

    def on_progress(fraction: float, message: str) -> None:
        ctx.report_progress(min(max(fraction, 0.0), 1.0) * 0.95, message)  # the last 5%: saving, registering

    return {"on_metrics": on_metrics, "on_progress": on_progress}


def output_dir(ctx: RecipeContext, key: str) -> Path:
    return Path(ctx.work_dir) / "models" / key


def check_new_model_key(ctx: RecipeContext, key: str) -> None:
    from adaptive_engine.sdk import errors

    if ctx.job_id is None:
        return
    try:
        ctx.client.models.get(key)
    except errors.NotFoundError:
        return
    raise RecipeInputError(f"model '{key}' already exists: choose another output_model_key")


def register(
    ctx: RecipeContext, folder: Path, key: str, name: str | None, base_model: str, lineage: dict[str, Any]
) -> dict[str, Any]:
    ctx.report_progress(0.97, f"registering {key}")
    model = ctx.register_model(folder, key, name, base_model=base_model, metadata=lineage)
    ctx.report_progress(1.0, f"model {key} registered")
    return model
