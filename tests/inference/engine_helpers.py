"""What the local-engine tests (transformers and llama.cpp) share: a request, the events of a stream, a bounded
wait for the engine thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
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


def llamacpp_logits(lora: Path | None, ids: list[int]) -> Any:
    """The next-token logits of the bundled GGUF model (with the GGUF LoRA ``lora``) after ``ids``, as llama.cpp
    computes them in one batch of one sequence."""
    import torch

    from adaptive_engine.server.inference.backends.llamacpp import LlamaCppRuntime
    from adaptive_engine.server.inference.backends.local import bundled_chat_spec

    spec = bundled_chat_spec(None)
    runtime = LlamaCppRuntime(Path(spec.path) / str(spec.gguf_file), cells=512, sequences=1, threads=2)
    try:
        if lora is not None:
            runtime.apply_lora(lora)
        last = len(ids) - 1
        return torch.from_numpy(runtime.decode([(t, p, 0, p == last) for p, t in enumerate(ids)])[0])
    finally:
        runtime.close()
