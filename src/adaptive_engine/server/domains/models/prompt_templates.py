"""System prompt templates: versioned system messages a model service adds to chat requests that bring none.

A template's text may hold ``{{name}}`` placeholders (its arguments), filled from the request's labels
(OpenAI ``metadata`` included). Versions are never edited: deriving adds the next version to the family, so
the template id stored on an interaction always names the exact text it was served with.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import ModelService, SystemPromptTemplate
from adaptive_engine.server.domains.use_cases.service import check_name
from adaptive_engine.server.errors import InvalidInput, NotFound

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
MAX_TEMPLATE = 100_000


def arguments_of(template: str) -> list[str]:
    """The template's placeholder names, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render(row: SystemPromptTemplate, labels: dict[str, str]) -> str:
    missing = [name for name in row.arguments if name not in labels]
    if missing:
        raise InvalidInput(
            f"the use case's system prompt template '{row.name}' needs the label(s) {', '.join(missing)} "
            "(pass them in labels or metadata, or send your own system message)",
            details={"param": "labels"},
        )
    return PLACEHOLDER.sub(lambda m: labels[m.group(1)], row.template)


def _check(name: str | None, template: str) -> None:
    if name is not None:
        check_name(name)
    if not template.strip():
        raise InvalidInput("template must not be empty")
    if len(template) > MAX_TEMPLATE:
        raise InvalidInput(f"template must be at most {MAX_TEMPLATE} characters")


async def create(session: AsyncSession, principal: Principal, *, name: str, template: str) -> SystemPromptTemplate:
    principal.require_global("model:register")
    _check(name, template)
    row_id = new_id()
    row = SystemPromptTemplate(
        id=row_id,
        family_id=row_id,
        version=1,
        name=name,
        template=template,
        arguments=arguments_of(template),
        created_by_id=principal.user_id,
    )
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, template_id: Any, what: str = "systemPromptTemplate") -> SystemPromptTemplate:
    parsed = parse_uuid(str(template_id)) if template_id is not None else None
    if parsed is None:
        raise InvalidInput(f"{what} must be a template id (a UUID)")
    row = await session.get(SystemPromptTemplate, parsed)
    if row is None:
        raise NotFound(f"{what}: system prompt template '{template_id}' not found")
    return row


async def derive(
    session: AsyncSession,
    principal: Principal,
    *,
    base: Any,
    template: str,
    name: str | None = None,
    update_model_services: bool = False,
) -> SystemPromptTemplate:
    """The next version of ``base``'s family. With ``update_model_services``, the services that use any
    version of the family move to the new one."""
    principal.require_global("model:register")
    _check(name, template)
    parent = await get(session, base)
    latest = (
        await session.execute(
            select(func.max(SystemPromptTemplate.version)).where(SystemPromptTemplate.family_id == parent.family_id)
        )
    ).scalar_one()
    row = SystemPromptTemplate(
        family_id=parent.family_id,
        version=latest + 1,
        name=name or parent.name,
        template=template,
        arguments=arguments_of(template),
        created_by_id=principal.user_id,
    )
    session.add(row)
    await session.flush()
    if update_model_services:
        family = select(SystemPromptTemplate.id).where(SystemPromptTemplate.family_id == parent.family_id)
        services = (
            await session.execute(select(ModelService).where(ModelService.system_prompt_template_id.in_(family)))
        ).scalars()
        for service in services:
            service.system_prompt_template = row
        await session.flush()
    return row


async def list_templates(session: AsyncSession, family: Any = None) -> list[SystemPromptTemplate]:
    """Every version, or only those of ``family`` (any version's id), newest family first, versions in order."""
    query = select(SystemPromptTemplate)
    if family is not None:
        query = query.where(SystemPromptTemplate.family_id == (await get(session, family, "family")).family_id)
    query = query.order_by(SystemPromptTemplate.family_id.desc(), SystemPromptTemplate.version)
    return list((await session.execute(query)).scalars())


async def for_request(session: AsyncSession, template_id: uuid.UUID, labels: dict[str, str]) -> str:
    """The system message a service's template gives this request."""
    row = await session.get(SystemPromptTemplate, template_id)
    if row is None:  # removed since the registry was cached: nothing to add
        return ""
    return render(row, labels)
