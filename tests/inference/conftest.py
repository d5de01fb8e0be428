"""Fixtures of the inference tests: the bundled models (loaded once per session) and a real fake
OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from adaptive_engine.server.inference.backends.local import (
    LocalChatBackend,
    LocalEmbeddingBackend,
    bundled_chat_spec,
    bundled_embedding_path,
)

API_KEY = "test-key"
REPO = Path(__file__).resolve().parents[2]


def model_cache_dir() -> Path:
    """Converted GGUF weights survive between test sessions here (the conversion takes ~20 s)."""
    return REPO / "build" / "test-cache" / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="session")
async def chat_backend():
    backend = LocalChatBackend(bundled_chat_spec(str(model_cache_dir())), name="smollm2-135m-instruct")
    await backend.load()
    yield backend
    await backend.unload()


@pytest.fixture(scope="session")
async def embedding_backend():
    backend = LocalEmbeddingBackend(bundled_embedding_path(), name="all-minilm-l6-v2")
    await backend.load()
    yield backend
    await backend.unload()


# --------------------------------------------------------------------------- fake upstream


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    base_url: str  # OpenAI-compatible base, ends with /v1
    root: str  # scheme://host:port
    requests: list[Recorded] = field(default_factory=list)
    slow_seconds: float = 5.0


def _reply_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "echo: " + body["messages"][-1]["content"]
    return "echo: " + body["prompt"]


def _make_app(state: FakeUpstream) -> Starlette:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        state.requests.append(Recorded(request.method, request.url.path, dict(request.query_params),
                                       {k.lower(): v for k, v in request.headers.items()}, body))
        azure = request.url.path.startswith("/openai/deployments/")
        key = request.headers.get("api-key") if azure else request.headers.get("authorization", "").removeprefix("Bearer ")
        if key != API_KEY:
            return JSONResponse({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
                                status_code=401)
        model = request.path_params.get("deployment") or body.get("model")
        if model == "broken":
            return JSONResponse({"error": {"message": "the model is on fire"}}, status_code=500)
        if model == "google-style":
            return JSONResponse([{"error": {"code": 400, "message": "API key not valid for this call"}}],
                                status_code=400)
        if model == "not-json":
            return Response("<html>bad gateway</html>", status_code=502, media_type="text/html")
        if model == "slow":
            await asyncio.sleep(state.slow_seconds)
        operation = request.path_params["operation"]
        if operation == "embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                    for i, t in enumerate(inputs)]
            data.reverse()  # out of order on purpose: clients must sort by index
            return JSONResponse({"object": "list", "data": data, "model": model,
                                 "usage": {"prompt_tokens": len(inputs) * 2, "total_tokens": len(inputs) * 2}})
        text = _reply_text(body)
        n = body.get("n", 1)
        chat = operation == "chat/completions"
        if body.get("stream"):
            return StreamingResponse(_stream(text, n, chat, model), media_type="text/event-stream")
        choices = []
        for i in range(n):
            item: dict[str, Any] = {"index": i, "finish_reason": "stop"}
            if chat:
                item["message"] = {"role": "assistant", "content": text}
            else:
                item["text"] = text
            choices.append(item)
        return JSONResponse({"id": "cmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
                             "choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n,
                                                           "total_tokens": 5 + 3 * n}})

    return Starlette(routes=[
        Route("/v1/{operation:path}", handle, methods=["POST"]),
        Route("/openai/deployments/{deployment}/{operation:path}", handle, methods=["POST"]),
    ])


async def _stream(text: str, n: int, chat: bool, model: str):
    words = text.split(" ")
    for i in range(n):
        for w, word in enumerate(words):
            piece = word if w == 0 else " " + word
            item = {"index": i, "finish_reason": None}
            item.update({"delta": {"content": piece}} if chat else {"text": piece})
            yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
        item = {"index": i, "finish_reason": "stop"}
        item.update({"delta": {}} if chat else {"text": ""})
        yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
    usage = {"prompt_tokens": 5, "completion_tokens": len(words) * n, "total_tokens": 5 + len(words) * n}
    yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


@pytest.fixture(scope="session")
async def upstream():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = FakeUpstream(base_url=f"http://127.0.0.1:{port}/v1", root=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_make_app(state), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def fresh_upstream(upstream: FakeUpstream) -> FakeUpstream:
    upstream.requests.clear()
    return upstream
