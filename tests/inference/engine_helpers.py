"""What the local-engine tests (transformers and llama.cpp) share: a request, the events of a stream, a bounded
wait for the engine thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from adaptive_engine.server.inference.backends.base import (
    ChatMessage,
    GenerationParams,
    GenerationRequest,
    TextDelta,
    Usage,
)


def chat(text: str, **params: Any) -> GenerationRequest:
    params.setdefault("temperature", 0.0)
    return GenerationRequest(messages=[ChatMessage("user", text)], params=GenerationParams(**params))


async def collect(backend: Any, request: GenerationRequest) -> tuple[list[TextDelta], Usage | None]:
    deltas: list[TextDelta] = []
    usage: Usage | None = None
    async for event in backend.stream(request):
        if isinstance(event, Usage):
            usage = event
        else:
            deltas.append(event)
    return deltas, usage


async def until(predicate: Callable[[], bool], attempts: int = 400) -> None:
    """Wait (bounded) for the engine thread to reach a state; no timing is asserted."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition never reached")
