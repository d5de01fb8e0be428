"""Permission rows of the usage domain (see tests/enforcement.py): usage reads are filtered to what the caller
sees, limits are managed with user:manage, prices set with model:register."""

from __future__ import annotations

from adaptive_engine import Adaptive
from tests.enforcement import Case, World

EVERYONE = ("viewer", "outsider", "editor")


def _setup(w: World) -> None:
    w.admin.models.add_external(
        name=f"usage-{w.suffix}",
        key=f"usage-{w.suffix}",
        external_model_id="m",
        api_key="k",
        provider="open_ai",
        endpoint="http://127.0.0.1:9/v1",
    )


def _limits(a: Adaptive, w: World) -> list:
    return [(r.scope, r.subject_id, r.requests_per_minute) for r in a.usage.list_limits()]


def _prices(a: Adaptive, w: World) -> object:
    return a.models.get(f"usage-{w.suffix}").prices


CASES = [
    Case(
        ("Query.model_usage",),
        op=lambda c, w: c.usage.model_usage(f"usage-{w.suffix}"),
        allowed_as=EVERYONE,
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.model_usage_by_use_case",),
        op=lambda c, w: c.usage.model_usage_by_use_case(f"usage-{w.suffix}"),
        allowed_as=EVERYONE,
        denied_as=(),
    ),
    Case(("Query.global_usage",), op=lambda c, w: c.usage.global_usage(), allowed_as=EVERYONE, denied_as=()),
    Case(
        ("Query.usage_report",),
        op=lambda c, w: c.usage.report(group_by=["USE_CASE"]),
        allowed_as=EVERYONE,
        denied_as=(),
    ),
    Case(("Query.my_limits",), op=lambda c, w: c.usage.my_limits(), allowed_as=EVERYONE, denied_as=()),
    Case(
        ("Query.usage_limits",),
        op=lambda c, w: c.usage.list_limits(),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
    ),
    Case(
        ("Mutation.set_usage_limits",),
        op=lambda c, w: c.usage.set_limits("USER", f"viewer-{w.suffix}@example.com", requests_per_minute=1000),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=_limits,
    ),
    Case(
        ("Mutation.remove_usage_limits",),
        op=lambda c, w: c.usage.remove_limits("USER", f"viewer-{w.suffix}@example.com"),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=_limits,
    ),
    Case(
        ("Mutation.update_model_prices",),
        op=lambda c, w: c.models.update_prices(f"usage-{w.suffix}", input=1.5),
        allowed_as=("editor",),
        denied_as=("viewer",),
        snapshot=_prices,
    ),
]
