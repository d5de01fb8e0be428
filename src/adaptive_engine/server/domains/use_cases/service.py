"""Use cases: creation, lookup and visibility."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models import Metric, Role, Team, TeamMember, UseCase, UseCaseMetric, UseCaseShare
from adaptive_engine.server.db.pagination import Page, contains, paginate
from adaptive_engine.server.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
OWNER_ROLE = "admin"
# A CSS colour or gradient the console paints the use case's card with: a bounded, printable string.
GRADIENT_PATTERN = re.compile(r"^[A-Za-z0-9#(),.% -]{1,200}$")
MAX_NAME = 200
MAX_EMOJI = 16


@dataclass(frozen=True, slots=True)
class UseCaseRecord:
    """A use case as the API layers show it."""

    id: uuid.UUID
    key: str
    name: str
    description: str
    created_at: datetime
    is_archived: bool
    emoji: str | None
    gradient_color: str | None
    default_metric_id: str | None

    @classmethod
    def of(cls, use_case: UseCase) -> UseCaseRecord:
        appearance = use_case.appearance or {}
        return cls(
            id=use_case.id,
            key=use_case.key,
            name=use_case.name,
            description=use_case.description,
            created_at=use_case.created_at,
            is_archived=use_case.is_archived,
            emoji=appearance.get("emoji"),
            gradient_color=appearance.get("gradient_color"),
            default_metric_id=(use_case.settings or {}).get("default_metric"),
        )


@dataclass
class Appearance:
    """How the console shows a use case; None: unchanged (on update) or unset (on create)."""

    emoji: str | None = None
    gradient_color: str | None = None


def _appearance(current: dict, appearance: Appearance | None) -> dict:
    merged = dict(current or {})
    if appearance is None:
        return merged
    if appearance.emoji is not None:
        if not appearance.emoji.strip() or len(appearance.emoji) > MAX_EMOJI or not appearance.emoji.isprintable():
            raise InvalidInput(f"metadata.emoji.native must be 1-{MAX_EMOJI} printable characters")
        merged["emoji"] = appearance.emoji
    if appearance.gradient_color is not None:
        if not GRADIENT_PATTERN.match(appearance.gradient_color):
            raise InvalidInput(
                "gradientColor must be a CSS colour or gradient (letters, digits, '#', '(', ')', ',',"
                " '.', '%', up to 200)"
            )
        merged["gradient_color"] = appearance.gradient_color
    return merged


def check_name(name: str, what: str = "name") -> str:
    """A display name (of a use case, a model, a model service): not blank, at most MAX_NAME characters."""
    if not name.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{what} must be at most {MAX_NAME} characters")
    return name


async def _default_metric(session: AsyncSession, use_case: UseCase, metric: str) -> dict:
    """settings.defaultMetric: the metric must exist; it is linked to the use case if it was not yet."""
    found = await find_by_id_or_key(session, Metric, metric)
    if found is None:
        raise InvalidInput(f"settings.defaultMetric: metric '{metric}' not found")
    linked = await session.get(UseCaseMetric, (use_case.id, found.id))
    if linked is None:
        session.add(UseCaseMetric(use_case_id=use_case.id, metric_id=found.id))
    return {**(use_case.settings or {}), "default_metric": str(found.id)}


def validate_key(key: str, what: str = "key") -> str:
    if not key or not key.strip():
        raise InvalidInput(f"{what} must not be empty")
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"{what} '{key}' is malformed: use 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return key


def key_from_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100]


async def create_use_case(
    session: AsyncSession,
    principal: Principal,
    *,
    key: str | None,
    name: str | None,
    description: str | None = None,
    team: str | None = None,
    appearance: Appearance | None = None,
    default_metric: str | None = None,
) -> UseCaseRecord:
    principal.require_global("use_case:create")
    if name is not None:
        check_name(name)
    if key is None:
        if not name:
            raise InvalidInput("a use case needs a key or a name")
        key = key_from_name(name)
    validate_key(key, "use case key")
    if (await session.execute(select(UseCase.id).where(UseCase.key == key))).first():
        raise AlreadyExists(f"use case '{key}' already exists")
    owner_team = await _owner_team(session, principal, team)
    role = (await session.execute(select(Role).where(Role.key == OWNER_ROLE))).scalar_one()
    use_case = UseCase(key=key, name=name or key, description=description or "", appearance=_appearance({}, appearance))
    session.add(use_case)
    await session.flush()
    if default_metric is not None:
        use_case.settings = await _default_metric(session, use_case, default_metric)
    session.add(UseCaseShare(use_case_id=use_case.id, team_id=owner_team.id, role_id=role.id, is_owner=True))
    await session.flush()
    await session.refresh(use_case, ["shares"])
    return UseCaseRecord.of(use_case)


async def _owner_team(session: AsyncSession, principal: Principal, team: str | None) -> Team:
    if team:
        found = await find_by_id_or_key(session, Team, team)
        if found is None:
            raise NotFound(f"team '{team}' not found")
        if found.id not in principal.team_permissions and not principal.is_admin:
            raise PermissionDenied(f"you are not a member of team '{team}'")
        return found
    first = (
        (
            await session.execute(
                select(Team)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(TeamMember.user_id == principal.user_id)
            )
        )
        .scalars()
        .first()
    )
    if first is None:
        raise InvalidInput("you belong to no team: pass the team that will own the use case")
    return first


async def get_use_case(
    session: AsyncSession, principal: Principal, id_or_key: str, permission: str = "use_case:read"
) -> UseCase:
    """The use case, if the caller holds ``permission`` on it. Unreadable use cases are reported as
    not found, so their existence does not leak."""
    use_case = await find_by_id_or_key(session, UseCase, id_or_key)
    what = f"use case '{id_or_key}'"
    if use_case is None:
        raise NotFound(f"{what} not found")
    await principal.require(session, permission, use_case.id, what)
    return use_case


async def use_case_record(
    session: AsyncSession, principal: Principal, id_or_key: str, permission: str = "use_case:read"
) -> UseCaseRecord:
    """``get_use_case`` as a record."""
    return UseCaseRecord.of(await get_use_case(session, principal, id_or_key, permission))


async def list_use_cases(
    session: AsyncSession, principal: Principal, *, is_archived: bool | None = None
) -> list[UseCaseRecord]:
    """The use cases the caller sees; ``is_archived``: only the archived (True) or the active (False) ones."""
    query = select(UseCase).where(principal.sees_use_case(UseCase.id)).order_by(UseCase.created_at, UseCase.key)
    if is_archived is not None:
        query = query.where(UseCase.is_archived.is_(is_archived))
    return [UseCaseRecord.of(u) for u in (await session.execute(query)).scalars()]


async def use_cases_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, UseCaseRecord]:
    """The use cases with these ids (no visibility check: for fields of objects already read)."""
    rows = (await session.execute(select(UseCase).where(UseCase.id.in_(ids)))).scalars()
    return {u.id: UseCaseRecord.of(u) for u in rows}


async def use_cases_by_key(session: AsyncSession, keys: Sequence[str]) -> dict[str, UseCaseRecord]:
    """The use cases with these keys (no visibility check: for fields of objects already read)."""
    rows = (await session.execute(select(UseCase).where(UseCase.key.in_(keys)))).scalars()
    return {u.key: UseCaseRecord.of(u) for u in rows}


async def metrics_of(session: AsyncSession, use_case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Metric]]:
    """The feedback keys attached to each use case, by key."""
    query = (
        select(UseCaseMetric.use_case_id, Metric)
        .join(UseCaseMetric, UseCaseMetric.metric_id == Metric.id)
        .where(UseCaseMetric.use_case_id.in_(use_case_ids))
        .order_by(Metric.key)
    )
    return _grouped((await session.execute(query)).all())


async def shares_of(session: AsyncSession, use_case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[UseCaseShare]]:
    """Each use case's shares (with their team and role), oldest first."""
    query = (
        select(UseCaseShare.use_case_id, UseCaseShare)
        .where(UseCaseShare.use_case_id.in_(use_case_ids))
        .order_by(UseCaseShare.created_at)
        .execution_options(populate_existing=True)
    )
    return _grouped((await session.execute(query)).unique().all())


def _grouped(pairs: Sequence[Any]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = {}
    for parent, item in pairs:
        out.setdefault(parent, []).append(item)
    return out


async def update_use_case(
    session: AsyncSession,
    principal: Principal,
    id_or_key: str,
    *,
    name: str | None = None,
    description: str | None = None,
    appearance: Appearance | None = None,
    default_metric: str | None = None,
    is_archived: bool | None = None,
) -> UseCaseRecord:
    """Change what is given (None: unchanged). Every field is checked before any is written."""
    use_case = await get_use_case(session, principal, id_or_key, "use_case:write")
    if name is not None:
        check_name(name)
    merged_appearance = _appearance(use_case.appearance, appearance)
    settings = await _default_metric(session, use_case, default_metric) if default_metric is not None else None
    if name is not None:
        use_case.name = name
    if description is not None:
        use_case.description = description
    use_case.appearance = merged_appearance
    if settings is not None:
        use_case.settings = settings
    if is_archived is not None:
        use_case.is_archived = is_archived
    await session.flush()
    return UseCaseRecord.of(use_case)


def refuse_archived(use_case: object) -> None:
    """New traffic (inference, logged interactions and feedback) is refused on an archived use case."""
    if getattr(use_case, "archived", False) or getattr(use_case, "is_archived", False):
        key = getattr(use_case, "key", "?")
        raise Conflict(f"use case '{key}' is archived: it takes no new traffic (unarchive it with updateUseCase)")


async def page_use_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
    search: str | None = None,
) -> tuple[Page[UseCaseRecord], int]:
    """The use cases the caller sees, oldest first, a page at a time; ``search`` matches key or name. With
    the count of all that match."""
    query = select(UseCase).where(principal.sees_use_case(UseCase.id))
    if search and search.strip():
        query = query.where(or_(contains(UseCase.key, search.strip()), contains(UseCase.name, search.strip())))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = await paginate(
        session, query, UseCase, first=first, last=last, after=after, before=before, newest_first=False
    )
    return replace(page, items=[UseCaseRecord.of(u) for u in page.items]), int(total or 0)


async def share_use_case(
    session: AsyncSession, principal: Principal, id_or_key: str, shares: list[tuple[str, str, bool]]
) -> UseCaseRecord:
    """Replace the use case's shares with ``shares`` ((team, role, is_owner) each). The caller needs
    use_case:share and can only grant roles within their own rights on it."""
    from adaptive_engine.server.auth.permissions import ADMIN

    use_case = await get_use_case(session, principal, id_or_key, "use_case:share")
    resolved: dict = {}
    for team_key, role_key, is_owner in shares:
        team = await find_by_id_or_key(session, Team, team_key)
        if team is None:
            raise NotFound(f"team '{team_key}' not found")
        role = await find_by_id_or_key(session, Role, role_key)
        if role is None:
            raise NotFound(f"role '{role_key}' not found")
        if team.id in resolved:
            raise InvalidInput(f"team '{team.key}' appears twice in the shares")
        resolved[team.id] = (team, role, bool(is_owner))
    if not any(owner for _, _, owner in resolved.values()):
        raise InvalidInput("a use case keeps at least one owner team: mark one share is_owner")
    own = await principal.use_case_permissions(session, use_case.id)
    current = {s.team_id: s for s in use_case.shares}
    for team_id, (_team, role, is_owner) in resolved.items():
        existing = current.get(team_id)
        if existing is not None and existing.role_id == role.id and existing.is_owner == is_owner:
            continue
        beyond = set(role.permissions) - own
        if ADMIN not in own and beyond:
            raise PermissionDenied(
                f"role '{role.key}' grants {', '.join(sorted(beyond))}, which you do not hold on this use case"
            )
    for team_id, share in current.items():
        if team_id not in resolved:
            await session.delete(share)
    for team_id, (team, role, is_owner) in resolved.items():
        existing = current.get(team_id)
        if existing is None:
            session.add(UseCaseShare(use_case_id=use_case.id, team_id=team.id, role_id=role.id, is_owner=is_owner))
        else:
            existing.role_id = role.id
            existing.is_owner = is_owner
    await session.flush()
    await session.refresh(use_case, ["shares"])
    return UseCaseRecord.of(use_case)
