"""What the ``model`` of a data-plane request names, for the caller who sends it.

The rule, in order (the first that applies wins):

1. ``"{use_case}"``: a use case the caller can see; it serves with its default model (or an A/B test's arm).
2. ``"{use_case}/{model}"``: the left part is a use case the caller can see and the right part a model key
   (a name whose left part is not such a use case is never split: ``org/name`` ids of the model hub are
   model keys). When the right part is no model but the whole name is one, rule 3 applies to the whole.
3. ``"{model}"``: a bare model key. It is served by the use case it is attached to, among those where the
   caller may run inference, when there is exactly one; with several, by the one where it is the default
   model, when there is exactly one (the model's *default use case* for this caller). Otherwise the name is
   ambiguous: 400 naming the candidates as ``use_case/model``.

A use case the caller cannot see is treated as if it did not exist, so a refusal never tells an existing but
hidden use case from a missing one. Everything is read through the registry cache (``db/refs.py``): no query
per request once warm.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal, allows
from adaptive_engine.server.db.refs import Attachment, Ref, RefCache
from adaptive_engine.server.errors import InvalidInput, NotFound, PermissionDenied

NAME_FORMS = "'<use_case>', '<use_case>/<model>' or a model key"


@dataclass(frozen=True)
class Named:
    """A resolved name: the use case, and the model when the name gives one (None: the use case's choice)."""

    use_case: Ref
    model: Ref | None


async def _visible(session: AsyncSession, principal: Principal, use_case: Ref | None, permission: str) -> bool:
    if use_case is None:
        return False
    granted = await principal.use_case_permissions(session, use_case.id)
    return allows(granted, "use_case:read") or allows(granted, permission)


async def resolve_name(
    session: AsyncSession, principal: Principal, refs: RefCache, name: object, *, permission: str = "inference:run"
) -> Named:
    """Resolve ``name`` by the module's rule and check ``permission`` on the use case it lands on."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"model must be {NAME_FORMS}")
    name = name.strip()
    use_case = await refs.use_case(session, name)
    if await _visible(session, principal, use_case, permission):
        assert use_case is not None
        await principal.require(session, permission, use_case.id, f"use case '{name}'")
        return Named(use_case, None)
    left, slash, right = name.partition("/")
    if slash and left and right:
        use_case = await refs.use_case(session, left)
        if await _visible(session, principal, use_case, permission):
            assert use_case is not None
            model = await refs.model(session, right)
            if model is not None or await refs.model(session, name) is None:
                await principal.require(session, permission, use_case.id, f"use case '{left}'")
                if model is None:
                    raise NotFound(f"model '{right}' not found")
                return Named(use_case, model)
    model = await refs.model(session, name)
    if model is None:
        raise NotFound(f"no use case or model named '{name}' (model must be {NAME_FORMS})")
    return await _bare_model(session, principal, refs, model, name, permission)


async def _bare_model(
    session: AsyncSession, principal: Principal, refs: RefCache, model: Ref, name: str, permission: str
) -> Named:
    attached = await refs.use_cases_of_model(session, model.id)
    granted = await principal.use_case_permissions_many(session, [uc.id for uc, _ in attached])
    usable: list[tuple[Ref, Attachment]] = [(uc, a) for uc, a in attached if allows(granted[uc.id], permission)]
    if not usable:
        if any(allows(granted[uc.id], "use_case:read") for uc, _ in attached):
            raise PermissionDenied(f"permission '{permission}' is required on a use case of model '{name}'")
        raise NotFound(f"model '{name}' is not attached to any use case you can use")
    if len(usable) > 1:
        defaults = [(uc, a) for uc, a in usable if a.is_default]
        if len(defaults) != 1:
            candidates = ", ".join(f"'{uc.key}/{name}'" for uc, _ in usable)
            raise InvalidInput(
                f"model '{name}' is attached to several use cases you can use; name one of {candidates}",
                details={"candidates": [f"{uc.key}/{name}" for uc, _ in usable]},
            )
        usable = defaults
    return Named(usable[0][0], model)
