"""Client of the reward-server protocol (the official client's ``adaptive_sdk.external``).

A reward server answers ``GET /info`` ({version, name, description}), ``GET /metadata_schema`` (the JSON
schema of the per-sample metadata), ``POST /score`` ({turns, metadata, id} -> {reward, metadata, id}),
``POST /batch_score`` ({requests: [...]} -> {responses: [...]}) and a websocket ``/ws`` that takes one
request per message and answers each in chunks: first ``{"id", "total_num_chunks"}``, then
``{"id", "chunk"}`` messages whose concatenation is the JSON response.

Every call has a timeout and a response-size limit and connects only where the outbound guard allows
(server/outbound.py). A server that fails raises RemoteFailure, whose message is the same whatever went
wrong (closed port, garbage, timeout: the answer must not make the server a port scanner, nor a way to read
an internal service); its ``detail`` says what happened, for admins and the server log. A URL or address
the guard refuses is InvalidInput.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema

from adaptive_engine.server.errors import InvalidInput, UpstreamError
from adaptive_engine.server.outbound import AddressRefused, OutboundGuard

DEFAULT_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
PUBLIC_FAILURE = "the remote env did not answer as expected"


class RemoteFailure(UpstreamError):
    """The reward server could not be used. ``message`` is the same for every cause; ``detail`` is the cause."""

    def __init__(self, detail: str, *, timed_out: bool = False) -> None:
        super().__init__(PUBLIC_FAILURE)
        self.detail = detail
        self.timed_out = timed_out

    def shown_to(self, admin: bool) -> str:
        """What the caller reads: the cause for admins, the one generic reason for everyone else."""
        return f"{PUBLIC_FAILURE}: {self.detail}" if admin else PUBLIC_FAILURE

    def for_caller(self, admin: bool) -> UpstreamError:
        return UpstreamError(self.shown_to(admin)) if admin else self


def validate_url(url: str, guard: OutboundGuard) -> str:
    """A reward server's base URL: allowed by the outbound guard, no query nor fragment. Returns it without a
    trailing slash."""
    guard.check_url(url, "the endpoint URL")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise InvalidInput("the endpoint URL must not have a query string or a fragment")
    return url.rstrip("/")


def _refused(refused: AddressRefused) -> InvalidInput:
    return InvalidInput(f"the endpoint URL is refused: {refused}")


@dataclass
class ServerInfo:
    name: str
    version: str
    description: str


@dataclass
class Reward:
    """One sample's answer: the reward, or why there is none."""

    reward: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def reasoning(self) -> str | None:
        for key in ("reasoning", "feedback", "explanation", "reason"):
            value = self.metadata.get(key)
            if isinstance(value, str) and value:
                return value
        return json.dumps(self.metadata, sort_keys=True)[:4000] if self.metadata else None


def turns_of(messages: list[dict[str, Any]], completion: str | None) -> list[dict[str, str]]:
    turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    if completion is not None:
        turns.append({"role": "assistant", "content": completion})
    return turns


def _parse_reward(obj: Any) -> Reward:
    if not isinstance(obj, dict):
        return Reward(error=f"the reward server answered {type(obj).__name__}, not an object")
    reward = obj.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(float(reward)):
        return Reward(error=f"the reward server answered no finite numeric 'reward' (got {type(reward).__name__})")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {"value": metadata}
    return Reward(reward=float(reward), metadata=metadata)


class RewardServerClient:
    """One reward server. Use as an async context manager (one HTTP connection pool)."""

    def __init__(
        self,
        url: str,
        guard: OutboundGuard,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.url = validate_url(url, guard)
        self.guard = guard
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s),
            transport=guard.transport(),
            follow_redirects=False,
            trust_env=False,
        )
        self._schema: dict[str, Any] | None = None
        self._schema_loaded = False

    async def __aenter__(self) -> RewardServerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- HTTP with limits

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with self._http.stream(method, path, json=body) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise RemoteFailure(
                            f"the reward server's answer to {path} is larger than {self.max_response_bytes} bytes"
                        )
                    chunks.append(chunk)
                raw = b"".join(chunks)
                if response.status_code >= 400:
                    text = raw.decode("utf-8", "replace")[:500]
                    raise RemoteFailure(f"the reward server answered {path} with HTTP {response.status_code}: {text!r}")
        except AddressRefused as refused:
            raise _refused(refused) from None
        except httpx.TimeoutException as exc:
            raise RemoteFailure(
                f"the reward server at {self.url} did not answer {path} within {self.timeout_s:g}s", timed_out=True
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteFailure(
                f"could not reach the reward server at {self.url}: {exc or type(exc).__name__}"
            ) from exc
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise RemoteFailure(f"the reward server answered {path} with something that is not JSON") from exc

    # -- the protocol

    async def info(self) -> ServerInfo:
        obj = await self._call("GET", "/info")
        if not isinstance(obj, dict) or not all(
            isinstance(obj.get(k), str) for k in ("name", "version", "description")
        ):
            raise RemoteFailure("the reward server's /info answer lacks string fields name, version and description")
        return ServerInfo(name=obj["name"], version=obj["version"], description=obj["description"])

    async def metadata_schema(self) -> dict[str, Any] | None:
        """The server's metadata JSON schema, or None when it publishes none."""
        if not self._schema_loaded:
            try:
                obj = await self._call("GET", "/metadata_schema")
            except RemoteFailure as failure:
                if failure.timed_out:
                    raise
                obj = None
            self._schema = obj if isinstance(obj, dict) else None
            self._schema_loaded = True
        return self._schema

    async def check_metadata(self, metadata: dict[str, Any] | None) -> str | None:
        """Why ``metadata`` does not fit the server's schema (None if it fits or there is no schema)."""
        schema = await self.metadata_schema()
        if schema is None:
            return None
        try:
            jsonschema.validate(metadata or {}, schema)
        except jsonschema.ValidationError as exc:
            return f"metadata does not match the reward server's schema: {exc.message}"
        except jsonschema.SchemaError:
            return None
        return None

    async def score(self, turns: list[dict[str, str]], metadata: dict[str, Any] | None = None) -> Reward:
        obj = await self._call("POST", "/score", {"turns": turns, "metadata": metadata, "id": None})
        return _parse_reward(obj)

    async def batch_score(self, requests: list[tuple[list[dict[str, str]], dict[str, Any] | None]]) -> list[Reward]:
        """Scores many samples in one call; samples whose metadata the server's schema rejects are not
        sent and get their error. A whole-batch failure raises."""
        results: list[Reward | None] = [None] * len(requests)
        to_send: list[int] = []
        for i, (_, metadata) in enumerate(requests):
            problem = await self.check_metadata(metadata)
            if problem:
                results[i] = Reward(error=problem)
            else:
                to_send.append(i)
        if to_send:
            body = {"requests": [{"turns": requests[i][0], "metadata": requests[i][1], "id": i} for i in to_send]}
            obj = await self._call("POST", "/batch_score", body)
            responses = obj.get("responses") if isinstance(obj, dict) else None
            if not isinstance(responses, list) or len(responses) != len(to_send):
                raise RemoteFailure("the reward server's /batch_score answer is not one response per request")
            for i, response in zip(to_send, responses, strict=True):
                results[i] = _parse_reward(response)
        return [r if r is not None else Reward(error="not scored") for r in results]

    async def ws_score(
        self, requests: list[tuple[list[dict[str, str]], dict[str, Any] | None]], *, max_in_flight: int = 32
    ) -> list[Reward]:
        """Scores over the ``/ws`` websocket (one connection, many requests in flight, chunked answers)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        parts = urlsplit(self.url)
        ws_url = ("wss" if parts.scheme == "https" else "ws") + self.url[len(parts.scheme) :] + "/ws"
        results: list[Reward] = [Reward(error="not scored")] * len(requests)
        pending: dict[int, asyncio.Future[Any]] = {}
        buffers: dict[int, tuple[int, list[str], int]] = {}

        async def reader(ws: Any) -> None:
            async for message in ws:
                obj = json.loads(message)
                rid = obj["id"]
                if "total_num_chunks" in obj:
                    buffers[rid] = (int(obj["total_num_chunks"]), [], 0)
                else:
                    total, chunks, size = buffers[rid]
                    chunk = obj["chunk"]
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise RemoteFailure(
                            f"a websocket answer of the reward server exceeds {self.max_response_bytes} bytes"
                        )
                    chunks.append(chunk)
                    buffers[rid] = (total, chunks, size)
                if rid in buffers and len(buffers[rid][1]) == buffers[rid][0]:
                    _, chunks, _ = buffers.pop(rid)
                    future = pending.get(rid)
                    if future is not None and not future.done():
                        future.set_result(json.loads("".join(chunks)))

        try:
            async with asyncio.timeout(self.timeout_s * max(1, math.ceil(len(requests) / max_in_flight))):
                # To an address the guard vetted (the URL's host stays the Host header and TLS name); no proxy
                # from the environment, and websockets follows no redirect to another host with host= set.
                port = parts.port or (443 if parts.scheme == "https" else 80)
                address = (await self.guard.resolve(parts.hostname or "", port))[0]
                async with connect(
                    ws_url,
                    open_timeout=self.timeout_s,
                    max_size=self.max_response_bytes,
                    ping_interval=None,
                    proxy=None,
                    host=address,
                    port=port,
                ) as ws:
                    read_task = asyncio.create_task(reader(ws))
                    gate = asyncio.Semaphore(max_in_flight)

                    async def one(i: int) -> None:
                        turns, metadata = requests[i]
                        problem = await self.check_metadata(metadata)
                        if problem:
                            results[i] = Reward(error=problem)
                            return
                        async with gate:
                            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                            pending[i] = future
                            await ws.send(json.dumps({"turns": turns, "metadata": metadata, "id": i}))
                            done, _ = await asyncio.wait({future, read_task}, return_when=asyncio.FIRST_COMPLETED)
                            if future in done:
                                results[i] = _parse_reward(future.result())
                            else:
                                results[i] = Reward(error="the websocket closed before answering")

                    try:
                        await asyncio.gather(*(one(i) for i in range(len(requests))))
                    finally:
                        read_task.cancel()
        except AddressRefused as refused:
            raise _refused(refused) from None
        except TimeoutError as exc:
            raise RemoteFailure(
                f"the reward server's websocket at {ws_url} did not answer in time", timed_out=True
            ) from exc
        except (OSError, WebSocketException, ValueError, KeyError) as exc:
            raise RemoteFailure(f"websocket scoring at {ws_url} failed: {exc or type(exc).__name__}") from exc
        return results
