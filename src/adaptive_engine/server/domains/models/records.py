"""The model registry's objects as the API layers show them, each built from its row in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Model, ModelService, SystemPromptTemplate
from adaptive_engine.server.inference.gateway import GatewayConfig


@dataclass(frozen=True, slots=True)
class ModelRecord:
    id: uuid.UUID
    key: str
    name: str
    kind: str
    provider: str
    status: str
    error: str | None
    is_external: bool
    is_adapter: bool
    is_training: bool
    is_published: bool
    is_stable: bool
    created_at: datetime
    size: int | None
    price_input: float
    price_output: float
    price_cached_input: float
    compute_config: dict[str, Any]
    gateway_config: GatewayConfig
    backbone_id: uuid.UUID | None
    # Where a job-made model came from (base model, recipe, use case, job, args); {} for the others.
    lineage: dict[str, Any]

    @classmethod
    def of(cls, model: Model) -> ModelRecord:
        return cls(
            id=model.id,
            key=model.key,
            name=model.name,
            kind=model.kind,
            provider=model.provider,
            status=model.status,
            error=model.error,
            is_external=model.is_external,
            is_adapter=model.is_adapter,
            is_training=model.is_training,
            is_published=model.is_published,
            is_stable=model.is_stable,
            created_at=model.created_at,
            size=model.size,
            price_input=model.price_input or 0.0,
            price_output=model.price_output or 0.0,
            price_cached_input=model.price_cached_input or 0.0,
            compute_config=dict(model.compute_config or {}),
            gateway_config=GatewayConfig.of(model.source),
            backbone_id=model.backbone_id,
            lineage=dict(model.lineage or {}),
        )

    @property
    def made_by_job(self) -> uuid.UUID | None:
        """The job that made the model, as its lineage says (None for a model no job made)."""
        return parse_uuid(str(self.lineage.get("job_id") or ""))


@dataclass(frozen=True, slots=True)
class PromptTemplateRecord:
    id: uuid.UUID
    name: str
    template: str
    arguments: list[str]
    created_at: datetime
    created_by_id: uuid.UUID | None
    family_id: uuid.UUID
    version: int

    @classmethod
    def of(cls, template: SystemPromptTemplate) -> PromptTemplateRecord:
        return cls(
            id=template.id,
            name=template.name,
            template=template.template,
            arguments=list(template.arguments or []),
            created_at=template.created_at,
            created_by_id=template.created_by_id,
            family_id=template.family_id,
            version=template.version,
        )


@dataclass(frozen=True, slots=True)
class ModelServiceRecord:
    """A model attached to a use case, with its model and system prompt template."""

    id: uuid.UUID
    use_case_id: uuid.UUID
    name: str  # the service's own name, or its model's
    model: ModelRecord
    system_prompt_template: PromptTemplateRecord | None
    is_default: bool
    desired_online: bool
    created_at: datetime

    @classmethod
    def of(cls, service: ModelService) -> ModelServiceRecord:
        template = service.system_prompt_template
        return cls(
            id=service.id,
            use_case_id=service.use_case_id,
            name=service.name or service.model.name,
            model=ModelRecord.of(service.model),
            system_prompt_template=PromptTemplateRecord.of(template) if template is not None else None,
            is_default=service.is_default,
            desired_online=service.desired_online,
            created_at=service.created_at,
        )
