"""updateModelGatewayConfig: a model's upstream timeouts, retries, fallbacks and default request fields
(server/inference/gateway.py says what each means). A value left out (null) is unchanged; a timeout of 0
goes back to the server's default, an empty ``fallbacks`` list or ``defaults`` object clears them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.models import Model
from adaptive_engine.server.domains.models.service import get_model
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.inference.gateway import (
    MAX_FALLBACKS,
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    NOT_DEFAULTS,
    GatewayConfig,
)

TIMEOUTS = ("connect_timeout_s", "first_byte_timeout_s", "total_timeout_s")


def config_of(model: Model) -> GatewayConfig:
    return GatewayConfig.of(model.source)


def _external_only(model: Model, name: str) -> None:
    if not model.is_external:
        raise InvalidInput(f"{name} applies to external models only ('{model.key}' is served here)")


async def update_gateway_config(
    session: AsyncSession,
    principal: Principal,
    id_or_key: str,
    *,
    connect_timeout_s: float | None = None,
    first_byte_timeout_s: float | None = None,
    total_timeout_s: float | None = None,
    max_retries: int | None = None,
    fallbacks: list[str] | None = None,
    defaults: object = None,  # any JSON from the API; anything but an object is refused below
) -> Model:
    principal.require_global("model:register")
    model = await get_model(session, id_or_key)
    config = GatewayConfig.of(model.source).as_json()
    for name, value in zip(TIMEOUTS, (connect_timeout_s, first_byte_timeout_s, total_timeout_s), strict=True):
        if value is None:
            continue
        if value == 0:
            config.pop(name, None)
            continue
        _external_only(model, name)
        if not 0 < value <= MAX_TIMEOUT_S:
            raise InvalidInput(f"{name} must be between 0 and {MAX_TIMEOUT_S:g} seconds (0: the server's default)")
        config[name] = float(value)
    if max_retries is not None:
        _external_only(model, "max_retries")
        if not 0 <= max_retries <= MAX_RETRIES:
            raise InvalidInput(f"max_retries must be between 0 and {MAX_RETRIES}")
        config["max_retries"] = max_retries
    if fallbacks is not None:
        config["fallbacks"] = await _check_fallbacks(session, model, fallbacks)
    if defaults is not None:
        if not isinstance(defaults, dict):
            raise InvalidInput("defaults must be an object of request fields")
        if defaults:
            _external_only(model, "defaults")
        refused = sorted(set(defaults) & NOT_DEFAULTS)
        if refused:
            raise InvalidInput(f"defaults cannot set {', '.join(refused)}: the request itself gives them")
        config["defaults"] = dict(defaults)
    # A new dict: the JSON column is saved when it is replaced, not when it is changed in place.
    model.source = {**(model.source or {}), "gateway": GatewayConfig.of({"gateway": config}).as_json()}
    await session.flush()
    return model


async def _check_fallbacks(session: AsyncSession, model: Model, keys: list[str]) -> list[str]:
    if len(keys) > MAX_FALLBACKS:
        raise InvalidInput(f"at most {MAX_FALLBACKS} fallbacks")
    out: list[str] = []
    for key in keys:
        fallback = await get_model(session, key)
        if fallback.id == model.id:
            raise InvalidInput(f"model '{model.key}' cannot be its own fallback")
        if fallback.kind != "chat" or model.kind != "chat":
            raise InvalidInput(
                f"fallbacks are for chat models ('{fallback.key}' is a {fallback.kind} model)"
                if fallback.kind != "chat"
                else f"fallbacks are for chat models ('{model.key}' is a {model.kind} model)"
            )
        if fallback.key in out:
            raise InvalidInput(f"fallback '{fallback.key}' is listed twice")
        out.append(fallback.key)
    return out
