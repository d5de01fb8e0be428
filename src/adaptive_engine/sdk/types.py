"""Typed objects returned by the SDK (shared across resources)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from adaptive_engine.sdk._base import APIObject


class Team(APIObject):
    id: str
    key: str
    name: str
    created_at: int


class Role(APIObject):
    id: str
    key: str
    name: str
    created_at: int
    permissions: list[str] = []


class TeamWithRole(APIObject):
    team: Team
    role: Role


class User(APIObject):
    id: str
    email: str
    name: str
    created_at: int
    teams: list[TeamWithRole] = []


class ComputeConfig(APIObject):
    tp: int
    kv_cache_len: int
    max_seq_len: int


class Model(APIObject):
    id: str
    key: str
    name: str
    online: str
    error: str | None = None
    is_external: bool = False
    provider_name: str | None = None
    is_adapter: bool = False
    is_training: bool = False
    created_at: int
    size: int | None = None
    compute_config: ComputeConfig | None = None
    backbone: Model | None = None


class ModelService(APIObject):
    id: str
    key: str
    name: str
    model: Model
    is_default: bool
    desired_online: bool
    created_at: int


class FeedbackKey(APIObject):
    id: str
    key: str
    name: str
    kind: str
    description: str = ""
    scoring_type: str
    created_at: Any = None


class UseCaseShare(APIObject):
    team: Team
    role: Role
    is_owner: bool


class UseCase(APIObject):
    id: str
    key: str
    name: str
    description: str
    created_at: int
    metrics: list[FeedbackKey] = []
    model_services: list[ModelService] = []
    permissions: list[str] = []
    shares: list[UseCaseShare] = []


class Metric(APIObject):
    id: str
    key: str
    name: str
    kind: str
    description: str = ""
    scoring_type: str
    created_at: Any = None
    has_direct_feedbacks: bool = False
    has_comparison_feedbacks: bool = False


class DatasetMetricUsage(APIObject):
    feedback_count: int
    comparison_count: int
    metric: Metric


class Dataset(APIObject):
    id: str
    key: str | None = None
    name: str
    created_at: int
    kind: str
    records: int | None = None
    source: str | None = None
    size_bytes: int | None = None
    metrics_usage: list[DatasetMetricUsage] = []


class Label(APIObject):
    key: str
    value: str


class UserRef(APIObject):
    id: str
    name: str
    email: str | None = None


class CustomRecipe(APIObject):
    id: str
    key: str | None = None
    name: str
    content: str = ""
    content_hash: str
    editable: bool = True
    global_: bool = Field(default=False, alias="global")
    builtin: bool = False
    input_schema: Any = None
    json_schema: Any = None
    description: str = ""
    labels: list[Label] = []
    created_at: int
    updated_at: int | None = None
    created_by: UserRef | None = None
