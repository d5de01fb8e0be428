"""Helpers for identity tests: users with their own keys, created through the real API."""

from __future__ import annotations

from adaptive_engine import Adaptive


def user_client(admin: Adaptive, server, email: str, teams: list[tuple[str, str]], name: str = "Tester") -> Adaptive:
    """Create ``email`` as a member of ``teams`` and return an SDK client authenticated as them."""
    admin.users.create(email=email, name=name, teams_with_role=teams)
    key = admin.api_keys.create(name="test", user=email).key
    return Adaptive(server.base_url, api_key=key)
