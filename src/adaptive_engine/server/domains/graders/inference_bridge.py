"""How judges reach a registered chat model: the app's inference manager (local or external backend), greedy
decoding, and an output constraint where the backend supports one. Judge calls are not logged as interactions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.db.models import Model
from adaptive_engine.server.errors import (
    NotFound,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from adaptive_engine.server.inference.manager import InferenceManager


class ManagerGenerator:
    """A judges.TextGenerator over the app's inference manager."""

    def __init__(self, manager: InferenceManager, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.manager = manager
        self.sessionmaker = sessionmaker

    async def __call__(
        self, model_key: str, messages: list[dict[str, str]], *, max_tokens: int, constraint: str | None = None
    ) -> str:
        from adaptive_engine.server.inference.backends import base

        async with self.sessionmaker() as session:
            model = (await session.execute(select(Model).where(Model.key == model_key))).scalar_one_or_none()
            if model is None:
                raise NotFound(f"judge model '{model_key}' is not in the model registry")
            backend = await self.manager.backend_for(model)
        # Local backends decode under the constraint; external providers' answers are parsed leniently.
        params = base.GenerationParams(
            max_tokens=max_tokens, temperature=0.0, constraint=None if model.is_external else constraint
        )
        request = base.GenerationRequest(
            messages=[base.ChatMessage(m["role"], m["content"]) for m in messages], params=params
        )
        try:
            result = await backend.generate(request)
        except base.UpstreamTimeout as exc:
            raise UpstreamTimeout(f"judge model '{model_key}' timed out: {exc.message}") from exc
        except base.UpstreamError as exc:
            raise UpstreamError(f"judge model '{model_key}' failed: {exc}") from exc
        except base.BackendError as exc:
            raise Unavailable(f"judge model '{model_key}' cannot serve: {exc.message}") from exc
        return result.choices[0].text if result.choices else ""
