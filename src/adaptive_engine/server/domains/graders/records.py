"""What the graders domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.models import Grader, Judge, RemoteEnv
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord


@dataclass(frozen=True, slots=True)
class GraderRecord:
    id: uuid.UUID
    key: str
    name: str
    grader_type: str
    # As stored (graders/service.py build_config): the type's settings.
    config: dict[str, Any]
    locked: bool
    online_rate: float
    use_case: UseCaseRecord
    metric: MetricRecord
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, grader: Grader) -> GraderRecord:
        return cls(
            id=grader.id,
            key=grader.key,
            name=grader.name,
            grader_type=grader.grader_type,
            config=grader.config or {},
            locked=grader.locked,
            online_rate=grader.online_rate,
            use_case=UseCaseRecord.of(grader.use_case),
            metric=MetricRecord.of(grader.metric),
            created_at=grader.created_at,
            updated_at=grader.updated_at,
        )


@dataclass(frozen=True, slots=True)
class JudgeRecord:
    """One version of a judge."""

    id: uuid.UUID
    key: str
    version: int
    name: str
    criteria: str | None
    prebuilt: str | None
    examples: tuple[dict[str, Any], ...]
    use_case_id: uuid.UUID
    model: ModelRecord
    metric: MetricRecord
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, judge: Judge) -> JudgeRecord:
        return cls(
            id=judge.id,
            key=judge.key,
            version=judge.version,
            name=judge.name,
            criteria=judge.criteria,
            prebuilt=judge.prebuilt,
            examples=tuple(judge.examples or ()),
            use_case_id=judge.use_case_id,
            model=ModelRecord.of(judge.model),
            metric=MetricRecord.of(judge.metric),
            created_at=judge.created_at,
            updated_at=judge.updated_at,
        )


@dataclass(frozen=True, slots=True)
class RemoteEnvRecord:
    """A reward server graders of type REMOTE call."""

    id: uuid.UUID
    key: str
    name: str
    url: str
    description: str
    version: str
    status: str
    metadata_schema: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, env: RemoteEnv) -> RemoteEnvRecord:
        return cls(
            id=env.id,
            key=env.key,
            name=env.name,
            url=env.url,
            description=env.description,
            version=env.version,
            status=env.status,
            metadata_schema=env.metadata_schema,
            created_at=env.created_at,
        )
