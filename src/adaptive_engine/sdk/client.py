"""Adaptive (sync) and AsyncAdaptive: the same resources over a blocking or an asyncio transport."""

from __future__ import annotations

from typing import Any, Generic, cast

import httpx

from adaptive_engine.sdk._base import C, resolve_api_key
from adaptive_engine.sdk._transport import AsyncTransport, RetryPolicy, SyncTransport, validate_base_url
from adaptive_engine.sdk.resources.ab_tests import ABTests
from adaptive_engine.sdk.resources.api_keys import ApiKeys
from adaptive_engine.sdk.resources.artifacts import Artifacts
from adaptive_engine.sdk.resources.chat import Chat
from adaptive_engine.sdk.resources.compute_pools import ComputePools
from adaptive_engine.sdk.resources.datasets import Datasets
from adaptive_engine.sdk.resources.embeddings import Embeddings
from adaptive_engine.sdk.resources.feedback import Feedback
from adaptive_engine.sdk.resources.graders import Graders
from adaptive_engine.sdk.resources.integrations import Integrations
from adaptive_engine.sdk.resources.interactions import Interactions
from adaptive_engine.sdk.resources.jobs import Jobs
from adaptive_engine.sdk.resources.models import Models
from adaptive_engine.sdk.resources.permissions import Permissions
from adaptive_engine.sdk.resources.recipes import Recipes
from adaptive_engine.sdk.resources.roles import Roles
from adaptive_engine.sdk.resources.system_prompt_templates import SystemPromptTemplates
from adaptive_engine.sdk.resources.teams import Teams
from adaptive_engine.sdk.resources.usage import Usage
from adaptive_engine.sdk.resources.use_cases import UseCases
from adaptive_engine.sdk.resources.users import Users

try:
    from importlib.metadata import version as _version

    VERSION = _version("adaptive-engine")
except Exception:  # running from a source tree
    VERSION = "0+unknown"


class _ClientBase(Generic[C]):
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        default_headers: dict[str, str] | None = None,
        timeout_secs: float | None = 90.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = validate_base_url(base_url)
        self.api_key = resolve_api_key(api_key)
        self._headers = {
            **(default_headers or {}),
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": f"adaptive-engine-sdk/{VERSION}",
        }
        self._timeout = httpx.Timeout(timeout_secs)
        self._retry = RetryPolicy(max_retries=max_retries)
        self._default_use_case: str | None = None
        # Resources (one class each, shared by both clients), typed for the client they belong to.
        client = cast(C, self)
        self.use_cases: UseCases[C] = UseCases(client)
        self.users: Users[C] = Users(client)
        self.models: Models[C] = Models(client)
        self.system_prompt_templates: SystemPromptTemplates[C] = SystemPromptTemplates(client)
        self.interactions: Interactions[C] = Interactions(client)
        self.feedback: Feedback[C] = Feedback(client)
        self.datasets: Datasets[C] = Datasets(client)
        self.recipes: Recipes[C] = Recipes(client)
        self.ab_tests: ABTests[C] = ABTests(client)
        self.jobs: Jobs[C] = Jobs(client)
        self.artifacts: Artifacts[C] = Artifacts(client)
        self.compute_pools: ComputePools[C] = ComputePools(client)
        self.graders: Graders[C] = Graders(client)
        self.chat: Chat[C] = Chat(client)
        self.embeddings: Embeddings[C] = Embeddings(client)
        self.teams: Teams[C] = Teams(client)
        self.roles: Roles[C] = Roles(client)
        self.permissions: Permissions[C] = Permissions(client)
        self.api_keys: ApiKeys[C] = ApiKeys(client)
        self.integrations: Integrations[C] = Integrations(client)
        self.usage: Usage[C] = Usage(client)

    @property
    def default_use_case(self) -> str | None:
        return self._default_use_case

    def set_default_use_case(self, use_case: str | None) -> None:
        """Use case that methods fall back to when none is passed."""
        self._default_use_case = use_case


class Adaptive(_ClientBase["Adaptive"]):
    """Synchronous client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        default_headers: dict[str, str] | None = None,
        timeout_secs: float | None = 90.0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(base_url, api_key, default_headers, timeout_secs, max_retries)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self._timeout)
        self._transport = SyncTransport(self._http, self._retry)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Adaptive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncAdaptive(_ClientBase["AsyncAdaptive"]):
    """Asynchronous client: every method returns an awaitable."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        default_headers: dict[str, str] | None = None,
        timeout_secs: float | None = 90.0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(base_url, api_key, default_headers, timeout_secs, max_retries)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self._timeout)
        self._transport = AsyncTransport(self._http, self._retry)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAdaptive:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
