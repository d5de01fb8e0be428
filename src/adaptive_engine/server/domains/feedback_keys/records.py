"""What the feedback keys domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from adaptive_engine.server.db.models import Metric


@dataclass(frozen=True, slots=True)
class MetricRecord:
    """A feedback key (the wire protocol calls it a metric)."""

    id: uuid.UUID
    key: str
    name: str
    kind: str
    scoring_type: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, metric: Metric) -> MetricRecord:
        return cls(
            id=metric.id,
            key=metric.key,
            name=metric.name,
            kind=metric.kind,
            scoring_type=metric.scoring_type,
            description=metric.description,
            created_at=metric.created_at,
        )
