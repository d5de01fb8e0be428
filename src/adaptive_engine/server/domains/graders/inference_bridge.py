"""How judges reach a registered chat model: through the inference manager on ``app.state``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.graders.judges import TextGenerator
from adaptive_engine.server.errors import NotFound
from adaptive_engine.server.inference.backends.base import ChatMessage, GenerationParams, GenerationRequest


def text_generator_for(state: Any) -> TextGenerator | None:
    """A judges.TextGenerator over the app's inference manager, or None when inference is not running."""
    manager = getattr(state, "inference", None)
    if manager is None:
        return None

    async def generate(model_key: str, messages: list[dict[str, str]], *, max_tokens: int,
                       constraint: str | None = None) -> str:
        async with state.sessionmaker() as session:
            model = (await session.execute(select(orm.Model).where(orm.Model.key == model_key))).scalar_one_or_none()
            if model is None:
                raise NotFound(f"judge model '{model_key}' not found")
            backend = await manager.backend_for(model)
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0,
                                  constraint=constraint if not model.is_external else None)
        request = GenerationRequest(messages=[ChatMessage(m["role"], m["content"]) for m in messages], params=params)
        result = await backend.generate(request)
        return result.choices[0].text

    return generate
