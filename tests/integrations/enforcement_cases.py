"""Permission table rows of integrations (see tests/enforcement.py): a team's integrations need
integration:manage in that team; another team's integration does not exist for the caller."""

from __future__ import annotations

from tests.enforcement import Case


def _hook(name: str) -> dict:
    return {
        "name": name,
        "provider": "webhook",
        "config": {
            "connection": {"webhook": {"url": "http://127.0.0.1:9/unused", "method": "POST", "headers": {}}},
            "notification_settings": {"subscriptions": [{"topic_pattern": "job.*", "scope": "TEAM"}]},
        },
    }


def _setup(w) -> None:
    w.extra["hook"] = w.admin.integrations.create(w.team_a, _hook(f"hook-{w.suffix}")).id
    w.extra["hook-victim"] = w.admin.integrations.create(w.team_a, _hook(f"victim-{w.suffix}")).id


def _state(a, w):
    return sorted((i.id, i.name, i.enabled) for i in a.integrations.list(w.team_a))


CASES = [
    Case(
        ("Query.providers",),
        op=lambda c, w: c.integrations.list_providers(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.provider",),
        op=lambda c, w: c.integrations.get_provider("webhook"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(("Query.integrations",), op=lambda c, w: c.integrations.list(w.team_a), denied_as=("viewer", "outsider")),
    Case(("Query.integration",), op=lambda c, w: c.integrations.get(w.extra["hook"]), denied_as=("viewer", "outsider")),
    Case(
        ("Query.notification_deliveries",),
        op=lambda c, w: c.integrations.deliveries(w.extra["hook"]),
        denied_as=("viewer", "outsider"),
    ),
    Case(
        ("Mutation.create_integration",),
        op=lambda c, w: c.integrations.create(w.team_a, _hook(w.fresh("hook"))),
        denied_as=("viewer", "outsider"),
        snapshot=_state,
    ),
    Case(
        ("Mutation.update_integration",),
        op=lambda c, w: c.integrations.update(w.extra["hook"], {"name": w.fresh("renamed")}),
        denied_as=("viewer", "outsider"),
        snapshot=_state,
    ),
    Case(
        ("Mutation.rotate_integration_secret",),
        op=lambda c, w: c.integrations.rotate_secret(w.extra["hook"]),
        denied_as=("viewer", "outsider"),
        snapshot=_state,
    ),
    Case(
        ("Mutation.delete_integration",),
        op=lambda c, w: c.integrations.delete(w.extra["hook-victim"]),
        denied_as=("viewer", "outsider"),
        snapshot=_state,
    ),
    Case(
        ("Mutation.test_notification",),
        op=lambda c, w: c.integrations.test_notification(
            {"topic": "enforcement.check", "scope": {"team": w.team_a}, "payload": {}}
        ),
        denied_as=("viewer", "outsider"),
    ),
]
