"""Validated inputs of the graders domain (what the GraphQL and REST layers hand to the service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adaptive_engine.server.errors import InvalidInput

GRADER_TYPES = ("JUDGE", "PREBUILT", "REMOTE", "CUSTOM")
EXAMPLE_ROLES = {"system", "user", "assistant", "tool", "developer"}
MAX_SAMPLES_PER_CALL = 1000


@dataclass
class JudgeConfigIn:
    model: str
    criteria: str
    examples: list[dict[str, Any]] = field(default_factory=list)
    system_template: str | None = None
    user_template: str | None = None


@dataclass
class PrebuiltConfigIn:
    key: str
    model: str


@dataclass
class RemoteConfigIn:
    url: str


@dataclass
class CustomConfigIn:
    description: str | None = None
    code: str | None = None


@dataclass
class GraderConfigIn:
    judge: JudgeConfigIn | None = None
    prebuilt: PrebuiltConfigIn | None = None
    remote: RemoteConfigIn | None = None
    custom: CustomConfigIn | None = None

    def only(self) -> tuple[str, Any]:
        given = [
            (t, v)
            for t, v in (
                ("JUDGE", self.judge),
                ("PREBUILT", self.prebuilt),
                ("REMOTE", self.remote),
                ("CUSTOM", self.custom),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise InvalidInput("graderConfig must hold exactly one of judge, prebuilt, remote or custom")
        return given[0]


@dataclass
class MetricCreateIn:
    name: str
    kind: str
    key: str | None = None
    scoring_type: str = "HIGHER_IS_BETTER"
    description: str | None = None
    unit: str | None = None


@dataclass
class MetricRef:
    """Get-or-create a feedback key: an existing key (created when missing) or a new one."""

    existing: str | None = None
    new: MetricCreateIn | None = None


@dataclass
class Sample:
    messages: list[dict[str, Any]]
    completion: str | None
    metadata: dict[str, Any] | None = None
    completion_id: Any = None


def validate_examples(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(examples) > 50:
        raise InvalidInput("a judge takes at most 50 examples")
    clean = []
    for i, ex in enumerate(examples):
        turns = ex.get("input")
        if not isinstance(turns, list) or not turns:
            raise InvalidInput(f"example {i}: 'input' must be a non-empty list of turns")
        for t in turns:
            if not isinstance(t, dict) or t.get("role") not in EXAMPLE_ROLES or not isinstance(t.get("content"), str):
                raise InvalidInput(
                    f"example {i}: every turn needs a role in {sorted(EXAMPLE_ROLES)} and a string content"
                )
        if not isinstance(ex.get("output"), str):
            raise InvalidInput(f"example {i}: 'output' must be a string")
        if not isinstance(ex.get("pass"), bool):
            raise InvalidInput(f"example {i}: 'pass' must be true or false")
        reasoning = ex.get("reasoning")
        if reasoning is not None and not isinstance(reasoning, str):
            raise InvalidInput(f"example {i}: 'reasoning' must be a string")
        clean.append(
            {
                "input": [{"role": t["role"], "content": t["content"]} for t in turns],
                "output": ex["output"],
                "pass": ex["pass"],
                "reasoning": reasoning,
            }
        )
    return clean


def validate_samples(samples: list[Sample]) -> list[Sample]:
    if not samples:
        raise InvalidInput("no sample to grade")
    if len(samples) > MAX_SAMPLES_PER_CALL:
        raise InvalidInput(f"at most {MAX_SAMPLES_PER_CALL} samples per call")
    for i, s in enumerate(samples):
        if not isinstance(s.messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in s.messages
        ):
            raise InvalidInput(f"sample {i}: messages must be a list of {{role, content}} strings")
        if s.completion is not None and not isinstance(s.completion, str):
            raise InvalidInput(f"sample {i}: completion must be a string")
        if s.metadata is not None and not isinstance(s.metadata, dict):
            raise InvalidInput(f"sample {i}: metadata must be an object")
    return samples
