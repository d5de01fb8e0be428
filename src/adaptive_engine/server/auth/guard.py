"""Declarative permission checks: every GraphQL root field and every REST route says what it needs.

How to use it (one line per field or route; the check runs before the resolver/route body):

GraphQL — a strawberry field extension::

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def datasets(self, info, use_case: IdOrKey) -> list[DatasetType]: ...

    @strawberry.mutation(extensions=[requires("job:run", use_case="input.use_case")])   # dotted: into an input
    @strawberry.mutation(extensions=[requires("job:run", use_case=use_case_of(find_job, "job"))])  # by resource id
    @strawberry.mutation(extensions=[requires("user:manage")])                         # global permission
    @strawberry.mutation(extensions=[requires("integration:manage", team="team")])     # role in that team
    @strawberry.field(extensions=[authenticated()])    # any caller; the service filters what it returns

REST — a FastAPI dependency that returns the :class:`Authorized` caller (and the use case, when scoped)::

    @router.post("/chat/completions")
    async def chat(body: ChatBody, auth: Authorized = route_requires("inference:run", use_case=from_body("model"))):
        auth.use_case   # the UseCase row, already checked (None when the body names none)

    @router.post("/upload/init", dependencies=[route_requires("dataset:write")])   # when the route needs nothing back

    ``from_body(*fields)`` / ``from_query(name)`` / ``from_path(param, finder, label)`` pick the use case from
    the request; when the request names none the permission is checked globally, and the route calls
    ``await auth.use_case_for(key)`` (or its service calls Principal.require) once it knows the target.

Rules (implemented once, in Principal):
- ``use_case=``: the argument holds a use case id or key. An unknown use case, and a use case the caller
  cannot read, are both NOT_FOUND (no existence leak); readable but without the permission is
  PERMISSION_DENIED. A ``None`` value (optional argument) falls back to the global check, or, with
  ``absent="filtered"`` (list fields whose service filters by visibility), to no check.
- no target: the permission must come from the caller's role in some team (``admin`` grants all).
- ``team=``: the permission must come from the caller's role in that team (admins: any team).
- ``tests/identity/test_enforcement.py`` fails when a root field or an /api/v1 route has no guard or no row
  in the permission table (``tests/<domain>/enforcement_cases*.py``, see tests/enforcement.py), and runs
  every row as users without and with the permission: add a row with your field or route.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.auth.sessions import require_csrf
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models import Team, UseCase
from adaptive_engine.server.db.refs import Ref, RefCache
from adaptive_engine.server.errors import Internal, NotFound
from adaptive_engine.server.platform import platform_of

# What a `use_case=` / `team=` target may be: an argument name (dotted into input objects) or an async
# callable (context, kwargs) -> id, key, row or None.
Target = str | Callable[[Any, dict[str, Any]], Awaitable[Any]] | None


def _dig(kwargs: dict[str, Any], path: str) -> Any:
    head, *rest = path.split(".")
    value = kwargs.get(head)
    for part in rest:
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


async def _target_value(target: Target, context: Any, kwargs: dict[str, Any]) -> Any:
    if target is None:
        return None
    if isinstance(target, str):
        return _dig(kwargs, target)
    return await target(context, kwargs)


async def authorize_use_case(
    session: AsyncSession, principal: Principal, permission: str, value: Any
) -> UseCase | None:
    """THE use-case check: resolve ``value`` (id, key or row) and require ``permission`` on it. ``value`` may
    also be ``(use_case_id, what)`` for a resource of a use case (see :func:`use_case_of`): then refusals
    name the resource ("job 'x' not found"), exactly as when it does not exist."""
    if isinstance(value, tuple):
        use_case_id, what = value
        await principal.require(session, permission, use_case_id, what)
        return await session.get(UseCase, use_case_id) if use_case_id is not None else None
    use_case = value if isinstance(value, UseCase) else await find_by_id_or_key(session, UseCase, value)
    what = f"use case '{value.key if isinstance(value, UseCase) else value}'"
    if use_case is None:
        raise NotFound(f"{what} not found")
    await principal.require(session, permission, use_case.id, what)
    return use_case


async def authorize_team(session: AsyncSession, principal: Principal, permission: str, value: Any) -> Team:
    team = value if isinstance(value, Team) else await find_by_id_or_key(session, Team, value)
    if team is None:
        raise NotFound(f"team '{value}' not found")
    principal.require_team(permission, team.id, team.key)
    return team


@dataclass
class Requirement:
    """What a field or route needs; kept on the guard so tests and docs can list it."""

    permission: str | None
    use_case: Target = None
    team: Target = None
    # When the target argument is absent (None): "global" checks the permission against the caller's team
    # roles; "filtered" lets the call through, for list fields whose service returns only what the caller sees.
    absent: str = "global"

    async def check(self, session: AsyncSession, principal: Principal, context: Any, kwargs: dict[str, Any]) -> Any:
        if self.permission is None:
            return None
        if self.use_case is not None:
            value = await _target_value(self.use_case, context, kwargs)
            if value is not None:
                return await authorize_use_case(session, principal, self.permission, value)
        elif self.team is not None:
            value = await _target_value(self.team, context, kwargs)
            if value is not None:
                return await authorize_team(session, principal, self.permission, value)
        if self.absent == "filtered":
            return None
        principal.require_global(self.permission)
        return None


class Guard(FieldExtension):
    """The strawberry field extension built by :func:`requires` / :func:`authenticated`."""

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement

    async def resolve_async(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        ctx = info.context
        require_csrf(ctx, info)  # a mutation through the console's cookie needs its CSRF header
        # Sibling fields run concurrently on the request's one session; SerialSession makes them take turns.
        await self.requirement.check(ctx.session, ctx.principal, ctx, kwargs)
        result = next_(source, info, **kwargs)
        if isinstance(result, Awaitable):
            result = await result
        return result


Finder = Callable[[AsyncSession, Any], Awaitable[Any]]


def _owned(finder: Finder, label: str) -> Callable[[AsyncSession, Any], Awaitable[Any]]:
    async def resolve(session: AsyncSession, value: Any) -> Any:
        if value is None:
            return None
        row = await finder(session, value)
        if row is None:
            raise NotFound(f"{label} '{value}' not found")
        return (row.use_case_id, f"{label} '{value}'")

    return resolve


def use_case_of(finder: Finder, label: str, arg: str = "id") -> Callable[[Any, dict[str, Any]], Awaitable[Any]]:
    """GraphQL target for a resource of a use case addressed by ``arg`` (e.g. a job id):
    ``requires("job:run", use_case=use_case_of(find_job, "job"))``. ``finder(session, value)`` returns the row
    (with ``use_case_id``) or None; a missing and an invisible resource get the same NOT_FOUND."""
    resolve = _owned(finder, label)

    async def target(context: Any, kwargs: dict[str, Any]) -> Any:
        return await resolve(context.session, _dig(kwargs, arg))

    return target


def requires(permission: str, *, use_case: Target = None, team: Target = None, absent: str = "global") -> Guard:
    if use_case is not None and team is not None:
        raise ValueError("a guard targets a use case or a team, not both")
    if absent not in ("global", "filtered") or (absent == "filtered" and use_case is None and team is None):
        raise ValueError("absent='filtered' needs a use_case or team target")
    return Guard(Requirement(permission, use_case=use_case, team=team, absent=absent))


def authenticated() -> Guard:
    """Any authenticated caller (the middleware already refused anonymous ones); the service must
    filter what it returns to what the caller may see."""
    return Guard(Requirement(None))


def field_guard(field: Any) -> Requirement | None:
    for extension in getattr(field, "extensions", None) or []:
        if isinstance(extension, Guard):
            return extension.requirement
    return None


def unguarded_fields(schema: Any) -> list[str]:
    """Root Query/Mutation fields without a guard (used by the enforcement test)."""
    missing = []
    for root in ("query", "mutation", "subscription"):
        definition = getattr(schema, root, None)
        if definition is None:
            continue
        type_definition = definition.__strawberry_definition__
        for field in type_definition.fields:
            if field_guard(field) is None:
                missing.append(f"{type_definition.name}.{field.python_name}")
    return missing


# ---------------------------------------------------------------------------------------------- REST


@dataclass
class Authorized:
    """What a guarded route gets: the caller, its session and the checked use case (if any)."""

    principal: Principal
    session: AsyncSession
    permission: str | None
    use_case: UseCase | Ref | None = None
    # The app's registry cache: data-plane routes name their use case by key on every call.
    refs: RefCache | None = None

    async def use_case_for(self, value: Any, permission: str | None = None) -> UseCase | Ref | None:
        perm = permission or self.permission
        if perm is None:
            raise Internal("this route has no permission to check a use case against")
        if isinstance(value, Ref):  # looked up already by the route's picker (a data-plane model name)
            await self.principal.require(self.session, perm, value.id, f"use case '{value.id}'")
            self.use_case = value
            return value
        if self.refs is not None and isinstance(value, (str, uuid.UUID)):
            found = await self.refs.use_case(self.session, value)
            if found is None:
                raise NotFound(f"use case '{value}' not found")
            await self.principal.require(self.session, perm, found.id, f"use case '{value}'")
            self.use_case = found
            return found
        # None for a resource of no use case (e.g. a model-import job): the permission was checked globally.
        self.use_case = await authorize_use_case(self.session, self.principal, perm, value)
        return self.use_case


# Picks the use case(s) of a request: fn(json_body, request, session), sync or async, returning an id, a key or a Ref, a
# list of them, or None (then the permission is checked globally and the route/service checks the target).
BodyTarget = Callable[..., Any] | None


def from_body(*fields: str, split_model: bool = True) -> Callable[..., Any]:
    """Pick the use case from the first present JSON body field; ``model`` values "uc/model" give "uc"."""

    def one(item: Any) -> str | None:
        if not isinstance(item, dict):
            return None
        for name in fields:
            value = item.get(name)
            if value:
                text = str(value)
                if name == "model" and split_model:
                    text = text.split("/", 1)[0]
                return text
        return None

    def pick(body: Any, *_: Any) -> Any:
        if isinstance(body, list):
            return [one(item) for item in body]
        return one(body)

    return pick


def route_requires(permission: str | None, *, use_case: BodyTarget = None) -> Any:
    """A FastAPI dependency: authorize the caller for ``permission`` (on the use case picked from the JSON
    body by ``use_case(body)`` when given) and hand the route an :class:`Authorized`."""
    from adaptive_engine.server.rest.deps import db_session

    async def dependency(request: Request, session: AsyncSession = Depends(db_session)) -> Authorized:
        body: Any = None
        if (
            use_case is not None
            and request.method in {"POST", "PUT", "PATCH"}
            and "json" in request.headers.get("content-type", "")
        ):
            from adaptive_engine.server.rest.json_input import read_json

            body = await read_json(request)  # malformed JSON is refused there, with its reason
        return await authorize_request(request, session, permission, use_case, body)

    dependency.__guard__ = Requirement(permission)  # type: ignore[attr-defined]
    return Depends(dependency)


async def authorize_request(
    request: Request, session: AsyncSession, permission: str | None, use_case: BodyTarget, body: Any
) -> Authorized:
    """The check behind every REST guard: the use case(s) ``use_case`` picks from the request's parsed JSON
    ``body``, or the caller's global right when it picks none."""
    principal: Principal = request.state.principal
    auth = Authorized(principal, session, permission, refs=platform_of(request).refs)
    if permission is None:
        return auth
    if use_case is not None:
        value = use_case(body, request, session)
        if isinstance(value, Awaitable):
            value = await value
        values = [v for v in (value if isinstance(value, (list, set)) else [value]) if v is not None]
        for one in values if len(values) < 2 else list(dict.fromkeys(values)):
            await auth.use_case_for(one)
        if values:
            return auth
    # No use case in the request: the permission must come from a role in some team; the route may
    # still check a use case it finds elsewhere with `await auth.use_case_for(key)`.
    principal.require_global(permission)
    return auth


def from_query(name: str) -> Callable[..., Any]:
    """Pick the use case from a query parameter (e.g. ``GET /datasets/{id}/download?use_case=…``)."""

    def pick(_body: Any, request: Request, *_: Any) -> Any:
        return request.query_params.get(name)

    return pick


def from_path(name: str, finder: Finder, label: str) -> Callable[..., Any]:
    """The use case of the resource whose id is the path parameter ``name`` (e.g. ``/jobs/{job_id}/logs``)."""
    resolve = _owned(finder, label)

    async def pick(_body: Any, request: Request, session: AsyncSession) -> Any:
        return await resolve(session, request.path_params.get(name))

    return pick


def iter_routes(app: Any) -> Any:
    """(path, methods, dependant, route) of every HTTP route of the app, included routers flattened."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # FastAPI's included router: its routes with the include's prefix
            for context in contexts():
                yield (
                    context.path,
                    set(getattr(context, "methods", None) or []),
                    getattr(context, "dependant", None),
                    context.original_route,
                )
        elif hasattr(route, "path"):
            yield route.path, set(getattr(route, "methods", None) or []), getattr(route, "dependant", None), route


def dependant_guard(dependant: Any) -> Requirement | None:
    # A route guarded in its own body (rest/json_route.py) carries the requirement on its endpoint.
    own = getattr(getattr(dependant, "call", None), "__guard__", None)
    if own is not None:
        return own
    stack = list(getattr(dependant, "dependencies", []) or [])
    while stack:
        dep = stack.pop()
        requirement = getattr(dep.call, "__guard__", None)
        if requirement is not None:
            return requirement
        stack.extend(dep.dependencies)
    return None


def unguarded_routes(app: Any, prefix: str = "/api/v1") -> list[str]:
    missing = []
    for path, methods, dependant, _ in iter_routes(app):
        if path.startswith(prefix) and dependant_guard(dependant) is None:
            missing.append(f"{','.join(sorted(methods))} {path}")
    return missing


def parse_id(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None
