"""Logging feedback: metric values on completions, preferences between two completions, session outcomes.

Validation reads on the request's session; the rows go through the group-commit writer, and each call
returns once its rows are committed. Logging on a key links the key to the use case.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback_keys.service import coerce_value, get_key
from adaptive_engine.server.domains.interactions.ingest import (
    IngestWriter,
    Rows,
    completion_row,
)
from adaptive_engine.server.domains.interactions.service import (
    ingest,
    normalize_messages,
    prompt_hash,
    resolve_model,
)
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import InvalidInput, NotFound


async def completion_use_case(
    session: AsyncSession, principal: Principal, writer: IngestWriter, completion_id: uuid.UUID, permission: str
) -> uuid.UUID:
    """The use case of a completion the caller may act on with ``permission``. A completion this process
    committed a moment ago (the usual case: feedback follows the answer) costs no query."""
    use_case_id = writer.recent_completions.get(completion_id)
    if use_case_id is None:
        completion = await session.get(orm.Completion, completion_id)
        use_case_id = completion.use_case_id if completion is not None else None
    what = f"completion '{completion_id}'"
    if use_case_id is None:
        raise NotFound(f"{what} not found")
    await principal.require(session, permission, use_case_id, what)
    return use_case_id


async def log_metric(
    session: AsyncSession,
    principal: Principal,
    writer: IngestWriter,
    *,
    completion_id: uuid.UUID,
    metric: str,
    value: Any,
    user: str | None = None,
    reason: str | None = None,
    details: str | None = None,
) -> uuid.UUID:
    use_case_id = await completion_use_case(session, principal, writer, completion_id, "feedback:write")
    key = await get_key(session, metric, writer.lookups)
    rows = Rows()
    row = rows.add(
        orm.Feedback,
        {
            "completion_id": completion_id,
            "metric_id": key.id,
            "use_case_id": use_case_id,
            "value": coerce_value(key, value),
            "reason": reason,
            "details": details,
            "user_ref": user,
        },
    )
    rows.links.add((use_case_id, key.id))
    await ingest(session, writer, rows)
    return row["id"]


async def log_preference(
    session: AsyncSession,
    principal: Principal,
    writer: IngestWriter,
    *,
    metric: str,
    preferred: uuid.UUID | Any,
    other: uuid.UUID | Any,
    messages: list[Any] | None = None,
    prompt: str | None = None,
    tied: str | None = None,
    use_case: str | None = None,
    user: str | None = None,
) -> uuid.UUID:
    """Each side is a completion id or an object with ``model`` and ``text`` (a new completion of
    ``messages`` is then logged for it). Both sides must belong to one use case."""
    if tied is not None and tied not in ("good", "bad"):
        raise InvalidInput(f"tied must be 'good' or 'bad', not {tied!r}")
    if isinstance(preferred, uuid.UUID) and preferred == other:
        raise InvalidInput("a preference needs two different completions, not the same one twice")
    key = await get_key(session, metric, writer.lookups)
    await writer.barrier()  # a completion served a moment ago may still be on its way to the database
    sides: dict[str, orm.Completion] = {}
    for name, side in (("preferred_completion", preferred), ("other_completion", other)):
        if isinstance(side, uuid.UUID):
            found = await session.get(orm.Completion, side)
            if found is None:
                raise NotFound(f"{name}: completion '{side}' not found")
            sides[name] = found
    use_case_row = await get_use_case(session, principal, use_case, "feedback:write") if use_case else None
    use_case_ids = {c.use_case_id for c in sides.values()} | ({use_case_row.id} if use_case_row else set())
    if len(use_case_ids) > 1:
        raise InvalidInput("both completions of a preference must belong to the same use case")
    if not use_case_ids:
        raise InvalidInput("use_case is required when both completions are given as text")
    use_case_id = use_case_ids.pop()
    if use_case_row is None:
        # Named like a missing completion, so an invisible use case does not reveal that the completion exists.
        first_name, first = next(iter(sides.items()))
        await principal.require(session, "feedback:write", use_case_id, f"{first_name}: completion '{first.id}'")

    rows = Rows()
    ids: dict[str, uuid.UUID] = {name: c.id for name, c in sides.items()}
    for name, side in (("preferred_completion", preferred), ("other_completion", other)):
        if name in ids or isinstance(side, uuid.UUID):  # a logged completion, found above
            continue
        if messages or prompt:
            prompt_messages = normalize_messages(messages, name, prompt)
        elif sides:
            # The other side is a logged completion: this text answers the same prompt.
            prompt_messages = next(iter(sides.values())).messages
        else:
            raise InvalidInput(f"{name}: messages (or prompt) are required when completions are given as text")
        model = await resolve_model(session, side.model, name, writer.lookups)
        row = rows.add(
            orm.Completion,
            completion_row(
                use_case_id=use_case_id,
                messages=prompt_messages,
                completion=side.text,
                prompt_hash=prompt_hash(prompt_messages),
                model_id=model.id,
                model_key=model.key,
                source="OFFLINE",
                user_ref=user,
            ),
        )
        ids[name] = row["id"]
    comparison = rows.add(
        orm.Comparison,
        {
            "use_case_id": use_case_id,
            "metric_id": key.id,
            "preferred_completion_id": ids["preferred_completion"],
            "other_completion_id": ids["other_completion"],
            "tied": tied,
            "user_ref": user,
        },
    )
    rows.links.add((use_case_id, key.id))
    await ingest(session, writer, rows)
    return comparison["id"]


async def log_outcome(
    session: AsyncSession,
    principal: Principal,
    writer: IngestWriter,
    *,
    session_id: uuid.UUID,
    metric: str,
    value: Any,
    user: str | None = None,
) -> uuid.UUID:
    """A value for a whole user session (the session's completions tell the use case)."""
    await writer.barrier()
    use_case_id = (
        await session.execute(
            select(orm.Completion.use_case_id).where(orm.Completion.session_id == session_id).limit(1)
        )
    ).scalar_one_or_none()
    if use_case_id is None:
        raise NotFound(f"session '{session_id}' not found")
    await principal.require(session, "feedback:write", use_case_id, f"session '{session_id}'")
    key = await get_key(session, metric, writer.lookups)
    rows = Rows()
    row = rows.add(
        orm.Outcome,
        {
            "use_case_id": use_case_id,
            "metric_id": key.id,
            "session_id": session_id,
            "value": coerce_value(key, value),
            "user_ref": user,
        },
    )
    rows.links.add((use_case_id, key.id))
    await ingest(session, writer, rows)
    return row["id"]
