"""Inference fixtures, shared by tests/inference and tests/compat (a plugin of tests/conftest.py, so each
session fixture exists once): the bundled models loaded once per session, a real fake OpenAI-compatible
server on 127.0.0.1, and a live server serving the bundled and external models."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
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

API_KEY = "test-key"


def model_cache_dir() -> Path:
    """Converted GGUF weights survive between test sessions in the shared model cache (the conversion
    takes ~20 s; training tests use the same folder)."""
    from adaptive_engine import models_bundled

    return models_bundled.default_cache_root() / models_bundled.BUNDLED_CHAT_KEY


# A Hermes-style template: tools as JSON in a system turn, a call inside <tool_call> tags, a result as a user turn.
TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nYou may call one of these tools. To call one, answer only with "
    '<tool_call>{"name": <name>, "arguments": <object>}</tool_call>.\n'
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    '{% for call in message.tool_calls %}<tool_call>{"name": "{{ call.function.name }}", "arguments": '
    "{{ call.function.arguments | tojson }}}</tool_call>{% endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>{{ message.content"
    " }}</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def with_tool_template(model: Path, folder: Path) -> Path:
    """A copy of the model folder ``model`` whose chat template renders tools (TOOL_TEMPLATE)."""
    import shutil

    shutil.copytree(model, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = TOOL_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="session")
async def chat_backend():
    from adaptive_engine.server.inference.backends.local import LocalChatBackend, bundled_chat_spec

    backend = LocalChatBackend(bundled_chat_spec(str(model_cache_dir())), name="smollm2-135m-instruct")
    await backend.load()
    yield backend
    await backend.unload()


@pytest.fixture(scope="session")
async def embedding_backend():
    from adaptive_engine.server.inference.backends.local import LocalEmbeddingBackend, bundled_embedding_path

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
    # Set by a test: the "slow" calls in progress answer now (a test waiting for a state, not for a length).
    slow_release: threading.Event = field(default_factory=threading.Event)
    # Requests seen per model name (the "fail<status>x<n>-..." models fail their first n requests).
    seen: dict[str, int] = field(default_factory=dict)


def _text(content: Any) -> str:
    """A message's content as text; other content parts show as [type]."""
    if isinstance(content, list):
        return "".join(p["text"] if p.get("type") == "text" else f"[{p.get('type')}]" for p in content)
    return content or ""


def _reply_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return f"tool {last['tool_call_id']} said: {_text(last['content'])}"
        text = "echo: " + _text(last["content"])
    else:
        text = "echo: " + body["prompt"]
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        return json.dumps({"echo": text})
    return text


def _tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What the fake model calls: the tool tool_choice names, else the first one (and the second too when
    parallel calls are allowed), with the last user text as arguments."""
    tools = [t["function"]["name"] for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or body["messages"][-1]["role"] == "tool":
        return []
    if isinstance(choice, dict):
        tools = [choice["function"]["name"]]
    elif body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    arguments = json.dumps({"text": _text(body["messages"][-1]["content"])})
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
        for i, name in enumerate(tools[:2])
    ]


def _logprobs(text: str) -> dict[str, Any]:
    return {
        "content": [
            {"token": w, "logprob": -0.25, "bytes": list(w.encode()), "top_logprobs": []} for w in text.split(" ")
        ]
    }


def _make_app(state: FakeUpstream) -> Starlette:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        state.requests.append(
            Recorded(
                request.method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        azure = request.url.path.startswith("/openai/deployments/")
        key = (
            request.headers.get("api-key")
            if azure
            else request.headers.get("authorization", "").removeprefix("Bearer ")
        )
        if key != API_KEY:
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, status_code=401
            )
        model = request.path_params.get("deployment") or body.get("model")
        if model == "broken":
            return JSONResponse({"error": {"message": "the model is on fire"}}, status_code=500)
        if model == "google-style":
            return JSONResponse(
                [{"error": {"code": 400, "message": "API key not valid for this call"}}], status_code=400
            )
        if model == "not-json":
            return Response("<html>bad gateway</html>", status_code=502, media_type="text/html")
        if model == "slow":
            answer_at = time.monotonic() + state.slow_seconds
            while time.monotonic() < answer_at and not state.slow_release.is_set():
                await asyncio.sleep(0.01)
        failing = re.match(r"fail(\d{3})x(\d+)", model or "")
        if failing:  # fails its first n requests with that status, then answers
            state.seen[model] = state.seen.get(model, 0) + 1
            if state.seen[model] <= int(failing.group(2)):
                status = int(failing.group(1))
                headers = {"retry-after-ms": "30"} if status == 429 else {}
                if model.endswith("-wait-long"):
                    headers = {"retry-after": "120"}
                return JSONResponse(
                    {"error": {"message": f"try again later ({state.seen[model]})"}},
                    status_code=status,
                    headers=headers,
                )
        if model in ("stall-midstream", "die-midstream") and body.get("stream"):
            return StreamingResponse(_broken_stream(model, state.slow_seconds), media_type="text/event-stream")
        operation = request.path_params["operation"]
        if operation == "embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                for i, t in enumerate(inputs)
            ]
            data.reverse()  # out of order on purpose: clients must sort by index
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": len(inputs) * 2, "total_tokens": len(inputs) * 2},
                }
            )
        text = _reply_text(body)
        n = body.get("n", 1)
        chat = operation == "chat/completions"
        calls = _tool_calls(body) if chat else []
        if body.get("stream"):
            return StreamingResponse(
                _stream(text, n, chat, model, calls, bool(body.get("logprobs"))), media_type="text/event-stream"
            )
        choices = []
        for i in range(n):
            item: dict[str, Any] = {"index": i, "finish_reason": "tool_calls" if calls else "stop"}
            if chat and calls:
                item["message"] = {"role": "assistant", "content": None, "tool_calls": calls, "refusal": None}
            elif chat:
                item["message"] = {"role": "assistant", "content": text, "refusal": None}
            else:
                item["text"] = text
            if body.get("logprobs"):
                item["logprobs"] = _logprobs(text)
            choices.append(item)
        usage = {
            "prompt_tokens": 5,
            "completion_tokens": 3 * n,
            "total_tokens": 5 + 3 * n,
            "prompt_tokens_details": {"cached_tokens": 1},
        }
        return JSONResponse(
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
        )

    async def messages(request: Request) -> Response:
        """Anthropic's Messages API (its shapes; enough of it for the translation to be tested both ways)."""
        body = json.loads(await request.body())
        state.requests.append(
            Recorded(
                request.method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        if request.headers.get("x-api-key") != API_KEY or not request.headers.get("anthropic-version"):
            return JSONResponse(
                {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
                status_code=401,
            )
        if body["model"] == "claude-overloaded":
            return JSONResponse(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status_code=529
            )
        blocks = _claude_reply(body)
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        usage = {"input_tokens": 7, "output_tokens": 4}
        if body.get("stream"):
            return StreamingResponse(_claude_stream(body["model"], blocks, stop, usage), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": stop,
                "usage": usage,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/{operation:path}", handle, methods=["POST"]),
            Route("/openai/deployments/{deployment}/{operation:path}", handle, methods=["POST"]),
        ]
    )


async def _stream(
    text: str, n: int, chat: bool, model: str, calls: list[dict[str, Any]] | None = None, logprobs: bool = False
):
    words = text.split(" ")
    if calls:  # tool calls come in pieces: id and name first, then the arguments a few characters at a time
        for i in range(n):
            first = {"index": i, "delta": {"role": "assistant", "content": None}, "finish_reason": None}
            yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [first]})}\n\n"
            for c, call in enumerate(calls):
                head = {
                    "index": c,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                pieces = [head] + [
                    {"index": c, "function": {"arguments": call["function"]["arguments"][k : k + 7]}}
                    for k in range(0, len(call["function"]["arguments"]), 7)
                ]
                for piece in pieces:
                    item = {"index": i, "delta": {"tool_calls": [piece]}, "finish_reason": None}
                    yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
            item = {"index": i, "delta": {}, "finish_reason": "tool_calls"}
            yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
        usage = {"prompt_tokens": 5, "completion_tokens": 9 * n, "total_tokens": 5 + 9 * n}
        yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"
        return
    for i in range(n):
        for w, word in enumerate(words):
            piece = word if w == 0 else " " + word
            item = {"index": i, "finish_reason": None}
            item.update({"delta": {"content": piece}} if chat else {"text": piece})
            if logprobs:
                item["logprobs"] = _logprobs(piece)
            yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
        item = {"index": i, "finish_reason": "stop"}
        item.update({"delta": {}} if chat else {"text": ""})
        yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
    usage = {"prompt_tokens": 5, "completion_tokens": len(words) * n, "total_tokens": 5 + len(words) * n}
    yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _claude_reply(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]["content"]
    results = [b for b in last if b.get("type") == "tool_result"]
    if results:
        return [{"type": "text", "text": f"tool {results[0]['tool_use_id']} said: {results[0]['content']}"}]
    text = "".join(b["text"] if b["type"] == "text" else f"[{b['type']}]" for b in last)
    tools = [t["name"] for t in body.get("tools") or []]
    choice = body.get("tool_choice") or {"type": "auto"}
    if tools and choice["type"] != "none":
        if choice["type"] == "tool":
            tools = [choice["name"]]
        elif choice.get("disable_parallel_tool_use"):
            tools = tools[:1]
        return [
            {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {"text": text}}
            for i, name in enumerate(tools[:2])
        ]
    return [{"type": "text", "text": "echo: " + text}]


def _claude_event(kind: str, **data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


async def _claude_stream(model: str, blocks: list[dict[str, Any]], stop: str, usage: dict[str, int]):
    yield _claude_event(
        "message_start",
        message={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
        },
    )
    yield _claude_event("ping")
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield _claude_event("content_block_start", index=index, content_block={"type": "text", "text": ""})
            words = block["text"].split(" ")
            for w, word in enumerate(words):
                piece = word if w == 0 else " " + word
                yield _claude_event("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        else:
            yield _claude_event(
                "content_block_start",
                index=index,
                content_block={"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
            )
            arguments = json.dumps(block["input"])
            for k in range(0, len(arguments), 6):
                yield _claude_event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "input_json_delta", "partial_json": arguments[k : k + 6]},
                )
        yield _claude_event("content_block_stop", index=index)
    yield _claude_event("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": usage["output_tokens"]})
    yield _claude_event("message_stop")


async def _broken_stream(model: str, stall: float):
    """Two chunks, then a stall (no more bytes for ``stall`` seconds) or a dropped connection."""
    for word in ("half", " an"):
        item = {"index": 0, "delta": {"content": word}, "finish_reason": None}
        yield f"data: {json.dumps({'id': 'c', 'model': model, 'choices': [item]})}\n\n"
    if model == "stall-midstream":
        await asyncio.sleep(stall)
    else:
        raise RuntimeError("the upstream died mid-stream")  # uvicorn drops the connection
    yield "data: [DONE]\n\n"


@pytest.fixture(scope="session")
def upstream():
    """The fake provider runs in its own thread and loop, so sync and async tests (and servers) reach it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = FakeUpstream(base_url=f"http://127.0.0.1:{port}/v1", root=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_make_app(state), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the fake upstream failed to start")
        time.sleep(0.01)
    yield state
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def fresh_upstream(upstream: FakeUpstream) -> FakeUpstream:
    upstream.requests.clear()
    return upstream


# --------------------------------------------------------------------------- a server with the bundled models


@dataclass
class Served:
    """A live server with a use case serving the bundled chat and embedding models and an external model."""

    server: Any
    use_case: str
    chat_model: str
    embedding_model: str
    external_model: str
    broken_model: str
    unattached_model: str

    @property
    def api_url(self) -> str:
        return self.server.base_url + "/api/v1"


def until_sync(predicate, attempts: int = 800) -> None:
    """Wait (bounded) for a state reached in another thread; no timing is asserted."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.025)
    raise AssertionError("condition never reached")


def wait_online(server: Any, keys: list[str], attempts: int = 1200) -> None:
    """Wait (bounded) until the manager has loaded the models; fail with their error otherwise."""
    from sqlalchemy import select

    from adaptive_engine.server.db import models as orm
    from tests.ab_tests.support import in_db

    for _ in range(attempts):

        async def statuses(session):
            rows = await session.execute(
                select(orm.Model.key, orm.Model.status, orm.Model.error).where(orm.Model.key.in_(keys))
            )
            return {key: (status, error) for key, status, error in rows}

        found = in_db(server, statuses)
        if any(status == "ERROR" for status, _ in found.values()):
            raise AssertionError(f"a model failed to load: {found}")
        if len(found) == len(keys) and all(status == "ONLINE" for status, _ in found.values()):
            return
        time.sleep(0.25)
    raise AssertionError(f"models never came online: {found}")


@pytest.fixture(scope="session")
def served(tmp_path_factory, upstream) -> Any:
    import uuid as _uuid

    from adaptive_engine import Adaptive
    from adaptive_engine.server.db import models as orm
    from adaptive_engine.server.inference.manager import BUNDLED_CHAT, BUNDLED_EMBEDDING
    from tests.ab_tests.support import in_db
    from tests.support import LiveServer, make_settings

    settings = make_settings(
        tmp_path_factory.mktemp("inference-data"),
        bundled_models=True,
        model_cache_dir=model_cache_dir().parent,
        external_timeout_s=5.0,
    )
    with LiveServer(settings) as live:
        wait_online(live, [BUNDLED_CHAT, BUNDLED_EMBEDDING])
        with Adaptive(live.base_url, api_key=live.api_key) as client:
            use_case = client.use_cases.create(key="assistant", name="Assistant")

        async def attach(session):
            uc_id = _uuid.UUID(use_case.id)
            from sqlalchemy import select

            bundled = {m.key: m for m in (await session.execute(select(orm.Model))).scalars()}
            session.add(orm.ModelService(use_case_id=uc_id, model_id=bundled[BUNDLED_CHAT].id, is_default=True))
            session.add(orm.ModelService(use_case_id=uc_id, model_id=bundled[BUNDLED_EMBEDDING].id))
            for key, model_id in (("gpt-fake", "gpt-test"), ("gpt-broken", "broken")):
                external = orm.Model(
                    key=key,
                    name=key,
                    kind="chat",
                    provider="open_ai",
                    is_external=True,
                    source={"external_model_id": model_id, "endpoint": upstream.base_url},
                    secret=API_KEY,
                    status="ONLINE",
                )
                session.add(external)
                await session.flush()
                session.add(orm.ModelService(use_case_id=uc_id, model_id=external.id))
            session.add(
                orm.Model(
                    key="loose-model",
                    name="Loose",
                    kind="chat",
                    provider="open_ai",
                    is_external=True,
                    source={"external_model_id": "gpt-test", "endpoint": upstream.base_url},
                    secret=API_KEY,
                    status="ONLINE",
                )
            )

        in_db(live, attach)
        yield Served(live, "assistant", BUNDLED_CHAT, BUNDLED_EMBEDDING, "gpt-fake", "gpt-broken", "loose-model")
