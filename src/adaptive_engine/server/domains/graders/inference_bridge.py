"""How judges reach a registered chat model: the inference manager on ``app.state`` (local or external
backend), greedy decoding, and an output constraint where the backend supports one. Judge calls are not
logged as interactions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adaptive_engine.server.db.models import Model
from adaptive_engine.server.domains.graders.judges import TextGenerator
from adaptive_engine.server.errors import NotFound, Unavailable, UpstreamError, UpstreamTimeout


class ManagerGenerator:
    def __init__(self, state: Any) -> None:
        self.state = state

    async def __call__(self, model_key: str, messages: list[dict[str, str]], *, max_tokens: int,
                       constraint: str | None = None) -> str:
        from adaptive_engine.server.inference.backends import base

        manager = getattr(self.state, "inference", None)
        if manager is None:
            raise Unavailable("judges need the inference layer, which is not running")
        async with self.state.sessionmaker() as session:
            model = (await session.execute(select(Model).where(Model.key == model_key))).scalar_one_or_none()
            if model is None:
                raise NotFound(f"judge model '{model_key}' is not in the model registry")
            backend = await manager.backend_for(model)
        # Local backends decode under the constraint; external providers' answers are parsed leniently.
        params = base.GenerationParams(max_tokens=max_tokens, temperature=0.0,
                                       constraint=None if model.is_external else constraint)
        request = base.GenerationRequest(messages=[base.ChatMessage(m["role"], m["content"]) for m in messages],
                                         params=params)
        try:
            result = await backend.generate(request)
        except base.UpstreamTimeout as exc:
            raise UpstreamTimeout(f"judge model '{model_key}' timed out: {exc.message}") from exc
        except base.UpstreamError as exc:
            raise UpstreamError(f"judge model '{model_key}' failed: {exc}") from exc
        except base.BackendError as exc:
            raise Unavailable(f"judge model '{model_key}' cannot serve: {exc.message}") from exc
        return result.choices[0].text if result.choices else ""


def text_generator_for(state: Any) -> TextGenerator | None:
    """A judges.TextGenerator over the app's inference manager, or None when inference is not running."""
    if getattr(state, "inference", None) is None:
        return None
    return ManagerGenerator(state)
