"""A world for the gateway tests: use cases of two teams, users with rights on some of them, and external
models served by the fake OpenAI-compatible upstream (tests/inference/fixtures.py), registered through our SDK."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from adaptive_engine import Adaptive
from tests.inference.fixtures import API_KEY, FakeUpstream
from tests.support import LiveServer


@dataclass
class Gateway:
    server: Any
    admin: Adaptive
    s: str  # suffix of every key of this world
    keys: dict[str, str] = field(default_factory=dict)  # user -> API key

    @property
    def api_url(self) -> str:
        return self.server.base_url + "/api/v1"

    def k(self, name: str) -> str:
        return f"{name}-{self.s}"

    def openai(self, who: str = "admin", **kw: Any) -> openai.OpenAI:
        key = self.server.api_key if who == "admin" else self.keys[who]
        return openai.OpenAI(base_url=self.api_url, api_key=key, max_retries=0, **kw)

    def external(self, key: str, external_model_id: str | None = None, endpoint: str | None = None) -> str:
        self.admin.models.add_external(
            name=key,
            key=key,
            external_model_id=external_model_id or key,
            api_key=API_KEY,
            provider="open_ai",
            endpoint=endpoint,
        )
        return key

    def attach(self, model: str, use_case: str, default: bool = False) -> None:
        self.admin.models.attach(model, use_case=use_case, make_default=default)


def build(server: Any, upstream: Any) -> Gateway:
    admin = Adaptive(server.base_url, api_key=server.api_key, max_retries=0)
    gw = Gateway(server, admin, uuid.uuid4().hex[:6])
    k = gw.k
    admin.teams.create(key=k("t1"))
    admin.teams.create(key=k("t2"))
    for uc, team in (("uc1", "t1"), ("uc2", "t1"), ("uc3", "t2")):
        admin.use_cases.create(key=k(uc), team=k(team))
    for who, team, role in (("alice", "t1", "editor"), ("bob", "t2", "editor"), ("vera", "t1", "viewer")):
        email = f"{who}-{gw.s}@example.com"
        admin.users.create(email=email, name=who, teams_with_role=[(k(team), role)])
        gw.keys[who] = admin.api_keys.create(name="gateway", user=email).key
    for model in ("solo", "shared", "def", "cross"):
        gw.external(k(model), endpoint=upstream.base_url)
    gw.attach(k("solo"), k("uc1"), default=True)
    gw.attach(k("shared"), k("uc1"))
    gw.attach(k("shared"), k("uc2"))
    gw.attach(k("def"), k("uc1"))
    gw.attach(k("def"), k("uc2"), default=True)
    gw.attach(k("cross"), k("uc1"))
    gw.attach(k("cross"), k("uc3"), default=True)
    return gw


@pytest.fixture(scope="module")
def gw(server: LiveServer, upstream: FakeUpstream) -> Iterator[Gateway]:
    world = build(server, upstream)
    yield world
    world.admin.close()
