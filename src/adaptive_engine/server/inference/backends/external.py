"""External providers spoken to over the OpenAI wire format: OpenAI (and any OpenAI-compatible
endpoint), Azure OpenAI and Google Gemini (its OpenAI-compatible endpoint).

All external backends of a server share one :class:`HttpPool` (pass it in); a backend built without
one makes and closes its own. With an outbound guard (server/outbound.py), the endpoint is checked when the
backend is built and every name is checked when it is resolved, at connect time.

Errors: an error in the OpenAI wire format (``{"error": {"message"}}``, Google's list of them, vLLM's
``{"object": "error", "message"}``) becomes :class:`UpstreamError` with the provider's message and status;
a timeout :class:`UpstreamTimeout`. Anything else (unreachable, refused, an answer that is not the API's)
is one generic UpstreamError, its cause in the server log: a user who registered an endpoint in the
internal network must not read its services' answers, nor tell open ports from closed ones.

The transport is aiohttp: this is the gateway's hot path, and on the same upstream aiohttp's client
served 3-4x the requests/s of httpx's at concurrency 1 and over 10x at concurrency 32
(see bench/gateway_overhead.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pydantic_core
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.outbound import OutboundGuard

from .base import (
    Backend,
    BackendInvalidRequest,
    BackendLoadError,
    BackendNotReady,
    Capability,
    Choice,
    EmbeddingResult,
    GenerationRequest,
    GenerationResult,
    Health,
    StreamEvent,
    TextDelta,
    UpstreamError,
    UpstreamTimeout,
    Usage,
)

T = TypeVar("T")
Provider = Literal["openai", "azure", "google", "anthropic"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION = "2023-06-01"
AZURE_API_VERSION = "2024-10-21"

_PROVIDER_NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "google": "Google", "anthropic": "Anthropic"}
# What a caller reads when the endpoint failed in a way that is not an API error (see the module's doc).
NOT_THE_API = "the endpoint did not answer as an OpenAI-compatible API"
log = logging.getLogger(__name__)
# Top-level fields of a provider's chat answer that go back to the caller as they came.
PASSED_BACK = ("system_fingerprint", "service_tier")
# Retries (tenacity): exponential backoff with jitter between attempts, unless the provider says when
# (Retry-After); a provider asking for a longer wait than this is not retried (a fallback may serve instead).
BACKOFF = wait_exponential_jitter(multiplier=0.2, max=8.0, jitter=0.2)
MAX_RETRY_AFTER_S = 20.0


@dataclass(frozen=True)
class ExternalModelConfig:
    provider: Provider
    external_model_id: str
    api_key: str
    endpoint: str | None = None  # OpenAI-compatible base URL; Azure resource or deployment URL
    api_version: str | None = None  # Azure only; also read from the endpoint's query
    timeout: float = 60.0  # for the answer's head, and for each later wait for more of it
    connect_timeout: float | None = None  # None: min(timeout, 10)
    total_timeout: float | None = None  # the whole call, retries and streams included; None: no limit
    max_retries: int = 2  # more attempts after a connection error, 429 or 5xx, before anything is answered
    # Request fields sent when the caller gives none (the model's configured defaults).
    defaults: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in _PROVIDER_NAMES:
            raise BackendInvalidRequest(
                f"unknown provider {self.provider!r}; expected one of {sorted(_PROVIDER_NAMES)}"
            )
        if not self.external_model_id.strip():
            raise BackendInvalidRequest("external_model_id is empty")
        if self.provider == "azure" and not self.endpoint:
            raise BackendInvalidRequest("an Azure OpenAI model needs its endpoint (resource or deployment URL)")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise BackendInvalidRequest(f"endpoint {self.endpoint!r} is not an http(s) URL")
        for name in ("timeout", "connect_timeout", "total_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise BackendInvalidRequest(f"{name} must be positive")
        if self.max_retries < 0:
            raise BackendInvalidRequest("max_retries must not be negative")


class HttpPool:
    """The pooled HTTP client the server shares between its external backends. The aiohttp session is
    made on first use, since it belongs to the event loop that runs it. With ``guard``, names are resolved
    through it (a refused address fails the connection)."""

    def __init__(self, max_connections: int = 200, guard: OutboundGuard | None = None) -> None:
        self.max_connections = max_connections
        self.guard = guard
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = self.guard.aiohttp_resolver() if self.guard is not None else None
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=60, ttl_dns_cache=300, resolver=resolver
            )
            # trust_env off: a proxy from the environment must not silently reroute model traffic.
            # Bodies are encoded by pydantic-core (Rust): several times faster than the json module on the
            # large bodies agents send (tools, schemas, long conversations).
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True, json_serialize=_to_json
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _to_json(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


def make_http_client(max_connections: int = 200, guard: OutboundGuard | None = None) -> HttpPool:
    return HttpPool(max_connections, guard)


# uvloop's clock (libuv's: whole milliseconds, read once per loop turn) can read a hair before the deadline in
# the timeout the deadline fired: a timeout this close to it is the deadline's.
CLOCK_SLACK_S = 0.002


def _until(deadline: float | None) -> Any:
    """A timeout at ``deadline`` (loop time) around one wait; none without a deadline. Scoped to each wait:
    an asyncio timeout must not span a generator's yields."""
    return asyncio.timeout_at(deadline) if deadline is not None else contextlib.nullcontext()


async def _sse_data(response: aiohttp.ClientResponse, deadline: float | None = None) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined by newlines, as the format says)."""
    data: list[str] = []
    while True:
        async with _until(deadline):
            raw = await response.content.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _retry_after(headers: Any) -> float | None:
    """When the provider says to come back: ``retry-after-ms`` (OpenAI's), or ``Retry-After`` in seconds or
    as an HTTP date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


def _json_bytes(body: dict[str, Any]) -> bytes:
    """A request body as JSON: pydantic-core's serializer, several times json.dumps' speed on the data plane;
    what it cannot write (a lone surrogate in a caller's string) is written by json.dumps, as before."""
    try:
        return pydantic_core.to_json(body)
    except (ValueError, TypeError):
        return json.dumps(body).encode()


def _json_value(content: bytes) -> Any:
    """An answer's JSON: pydantic-core's parser, else json.loads (which takes the rare lone surrogate escape)."""
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        return json.loads(content)


class ExternalBackend(Backend):
    """``guard``: the outbound policy for an endpoint users registered (None for one the server runs itself,
    such as its vLLM processes). Its names are checked by the pool's resolver: give the backend a pool made
    with the same guard."""

    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDING})
    passthrough = True

    def __init__(
        self, config: ExternalModelConfig, client: HttpPool | None = None, guard: OutboundGuard | None = None
    ) -> None:
        self.config = config
        self.provider_name = _PROVIDER_NAMES[config.provider]
        self.guard = guard
        self._client = client
        self._owns_client = client is None
        self._loaded = False
        self._base, self._params, self._headers = self._routing()
        # The body goes as bytes of our own serializing (_json_bytes): its type is said here, once.
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        if guard is not None:
            # aiohttp connects to an address literal without asking the resolver: literals are checked here.
            try:
                guard.check_url(self._base, f"the {self.provider_name} endpoint")
            except InvalidInput as refused:
                raise BackendLoadError(refused.message) from None
        # Each wait for the upstream is bounded (connect, then each read: the answer's head and the stream's
        # chunks); the whole call only by total_timeout, enforced around each wait (see _deadline).
        connect = config.connect_timeout if config.connect_timeout is not None else min(config.timeout, 10.0)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=config.timeout)

    # -- routing

    def _routing(self) -> tuple[str, dict[str, str], dict[str, str]]:
        c = self.config
        if c.provider == "azure":
            assert c.endpoint is not None
            parts = urlsplit(c.endpoint)
            query = dict(parse_qsl(parts.query))
            path = parts.path.rstrip("/")
            if "/openai/deployments/" in path:  # a deployment URL, possibly with the operation on it
                head, _, tail = path.partition("/openai/deployments/")
                path = f"{head}/openai/deployments/{tail.split('/')[0]}"
            else:
                path = f"{path}/openai/deployments/{c.external_model_id}"
            base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
            version = c.api_version or query.get("api-version") or AZURE_API_VERSION
            return base, {"api-version": version}, {"api-key": c.api_key}
        if c.provider == "anthropic":
            base = (c.endpoint or ANTHROPIC_BASE_URL).rstrip("/")
            return base, {}, {"x-api-key": c.api_key, "anthropic-version": ANTHROPIC_VERSION}
        default = GOOGLE_BASE_URL if c.provider == "google" else OPENAI_BASE_URL
        base = (c.endpoint or default).rstrip("/")
        return base, {}, {"Authorization": f"Bearer {c.api_key}"}

    def url(self, operation: str) -> str:
        """The full URL of ``operation`` (``chat/completions``, ``completions``, ``embeddings``), query included."""
        url = f"{self._base}/{operation}"
        return f"{url}?{urlencode(self._params)}" if self._params else url

    # -- lifecycle

    async def load(self) -> None:
        if self._client is None:
            self._client = make_http_client(max_connections=50, guard=self.guard)
            self._owns_client = True
        self._loaded = True

    async def unload(self) -> None:
        self._loaded = False
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def health(self) -> Health:
        return Health(ok=self._loaded, detail="" if self._loaded else "not loaded")

    # -- calls

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        if request.upstream is not None:
            body = {**self.config.defaults, **request.upstream}  # the caller's fields as given, over the defaults
        else:
            body = self._params_body(request)
        if self.config.provider == "azure":  # Azure names the model by the deployment in the URL
            body.pop("model", None)
        else:
            body["model"] = self.config.external_model_id
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _params_body(request: GenerationRequest) -> dict[str, Any]:
        """The body of a request from the server itself (no caller fields): what ``params`` says."""
        p = request.params
        body: dict[str, Any] = {}
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        else:
            body["prompt"] = request.prompt
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        body["temperature"] = p.temperature
        body["top_p"] = p.top_p
        if p.stop:
            body["stop"] = list(p.stop)
        if p.n != 1:
            body["n"] = p.n
        if p.seed is not None:
            body["seed"] = p.seed
        if request.user:
            body["user"] = request.user
        return body

    def _http(self) -> aiohttp.ClientSession:
        if not self._loaded or self._client is None:
            raise BackendNotReady(f"{self.provider_name} model {self.config.external_model_id} is not loaded")
        return self._client.session()

    def _deadline(self) -> float | None:
        total = self.config.total_timeout
        return asyncio.get_running_loop().time() + total if total is not None else None

    def _worth_retrying(self, exc: BaseException, deadline: float | None) -> bool:
        if not isinstance(exc, UpstreamError) or not exc.retryable:
            return False
        after = exc.retry_after or 0.0
        if after > MAX_RETRY_AFTER_S:
            return False
        return deadline is None or asyncio.get_running_loop().time() + after < deadline

    @staticmethod
    def _wait(exc: BaseException | None, failed: int) -> float:
        """Seconds before the next attempt, after ``failed`` failed ones: what the provider said, else backoff."""
        after = getattr(exc, "retry_after", None)
        return after if after is not None else BACKOFF(SimpleNamespace(attempt_number=failed))  # type: ignore[arg-type]

    async def _attempts(self, attempt: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        """``attempt()``, tried again (max_retries more times) after each retryable failure. The first try runs
        outside tenacity: its bookkeeping cost about a fifth of a proxied call, and most calls succeed at once."""
        try:
            return await attempt()
        except UpstreamError as error:
            if self.config.max_retries == 0 or not self._worth_retrying(error, deadline):
                raise
            if self.on_retry is not None:
                self.on_retry(error)
            await asyncio.sleep(self._wait(error, 1))

        def wait(state: RetryCallState) -> float:
            failed = state.outcome.exception() if state.outcome is not None else None
            if self.on_retry is not None and failed is not None:
                self.on_retry(failed)
            return self._wait(failed, state.attempt_number + 1)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_retries),
            wait=wait,
            reraise=True,
            retry=retry_if_exception(lambda exc: self._worth_retrying(exc, deadline)),
        )
        async for tried in retrying:
            with tried:
                result = await attempt()
        return result

    async def _open(self, operation: str, body: dict[str, Any], deadline: float | None) -> aiohttp.ClientResponse:
        """One attempt: the response once its head says success (the caller releases it), or the error."""
        request = self._http().post(
            f"{self._base}/{operation}",
            params=self._params,
            headers=self._post_headers,
            data=_json_bytes(body),
            timeout=self._timeout,
            allow_redirects=False,
        )
        try:
            async with _until(deadline):
                response = await request
        except TimeoutError as exc:
            raise self._timeout_error(exc, deadline) from exc
        except aiohttp.ClientError as exc:
            raise self._unreachable(exc) from exc
        if response.status >= 400:
            try:
                async with _until(deadline):
                    content = await response.read()
            except (TimeoutError, aiohttp.ClientError):
                content = b""
            finally:
                response.release()
            raise self._status_error(response.status, content, response.headers)
        return response

    async def _post(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """A whole non-streaming call, with retries: nothing has reached the caller before it ends."""
        deadline = self._deadline()

        async def attempt() -> bytes:
            response = await self._open(operation, body, deadline)
            try:
                async with _until(deadline):
                    return await response.read()
            except TimeoutError as exc:
                raise self._timeout_error(exc, deadline) from exc
            except aiohttp.ClientError as exc:
                raise self._unreachable(exc) from exc
            finally:
                response.release()

        content = await self._attempts(attempt, deadline)
        try:
            return _json_value(content)
        except ValueError:
            raise self._not_the_api(f"answer is not JSON: {content[:200]!r}") from None

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        chat = request.messages is not None
        data = await self._post("chat/completions" if chat else "completions", self._body(request, stream=False))
        keep = request.upstream is not None  # the caller's own fields: return the provider's answer as it came
        try:
            choices = []
            for position, item in enumerate(data["choices"]):
                message = item.get("message") or {} if chat else None
                text = message.get("content") if message is not None else item.get("text")
                choices.append(
                    Choice(
                        index=item.get("index", position),
                        text=text or "",
                        finish_reason=item.get("finish_reason") or "stop",
                        message=message if keep else None,
                        logprobs=item.get("logprobs"),
                    )
                )
            usage = _usage(data.get("usage"))
        except (KeyError, TypeError, AttributeError):
            raise self._not_the_api(f"unexpected answer shape: {str(data)[:200]}") from None
        choices.sort(key=lambda c: c.index)
        extra = {k: data[k] for k in PASSED_BACK if data.get(k) is not None} if keep else {}
        return GenerationResult(
            choices=choices, usage=usage, model=data.get("model") or self.config.external_model_id, extra=extra
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        chat = request.messages is not None
        keep = request.upstream is not None
        usage: Usage | None = None
        async for chunk in self._chunks(
            "chat/completions" if chat else "completions", self._body(request, stream=True)
        ):
            for item in chunk.get("choices") or []:
                delta = item.get("delta") or {} if chat else None
                text = (delta.get("content") if delta is not None else item.get("text")) or ""
                reason = item.get("finish_reason")
                logprobs = item.get("logprobs")
                # A piece of a tool call, a refusal... has no text but must reach the caller.
                other = (
                    keep
                    and delta is not None
                    and any(v is not None for k, v in delta.items() if k not in ("content", "role"))
                )
                if text or reason or other or (keep and logprobs is not None):
                    yield TextDelta(
                        index=item.get("index", 0),
                        text=text,
                        finish_reason=reason,
                        delta=delta if keep else None,
                        logprobs=logprobs,
                    )
            if chunk.get("usage"):
                usage = _usage(chunk["usage"])
        yield usage or Usage()

    async def _chunks(self, operation: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The JSON events of a streamed call, up to ``[DONE]`` or the end. Retries happen only while opening:
        once an event is out, the caller has it. An error event ends the stream with the provider's message."""
        deadline = self._deadline()
        response = await self._attempts(lambda: self._open(operation, body, deadline), deadline)
        try:
            async for data in _sse_data(response, deadline):
                if data.strip() == "[DONE]":
                    break
                if not data.strip():
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise self._not_the_api(f"bad stream chunk: {data[:200]!r}") from None
                if not isinstance(chunk, dict):
                    raise self._not_the_api(f"bad stream chunk: {data[:200]!r}")
                if chunk.get("error"):
                    message = _message(chunk)
                    if message is None:
                        raise self._not_the_api(f"stream error chunk: {data[:200]!r}")
                    raise UpstreamError(message, provider=self.provider_name)
                yield chunk
        except TimeoutError as exc:
            raise self._timeout_error(exc, deadline) from exc
        except aiohttp.ClientError as exc:
            raise self._unreachable(exc, during_answer=True) from exc
        finally:
            response.release()

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        if not texts:
            raise BackendInvalidRequest("no input to embed")
        body: dict[str, Any] = {"input": list(texts), "encoding_format": "float"}
        if self.config.provider != "azure":
            body["model"] = self.config.external_model_id
        data = await self._post("embeddings", body)
        try:
            items = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [list(map(float, item["embedding"])) for item in items]
        except (KeyError, TypeError, ValueError):
            raise self._not_the_api(f"unexpected answer shape: {str(data)[:200]}") from None
        return EmbeddingResult(vectors=vectors, usage=_usage(data.get("usage")))

    # -- errors

    def _status_error(self, status: int, content: bytes, headers: Any = None) -> UpstreamError:
        retryable = status == 429 or status >= 500
        after = _retry_after(headers) if retryable and headers is not None else None
        try:
            message = _message(json.loads(content))
        except ValueError:
            message = None
        if message is None:
            error = self._not_the_api(f"HTTP {status} {_reason(status)}: {content[:200]!r}")
            error.retryable, error.retry_after = retryable, after
            return error
        return UpstreamError(
            message, status=status, provider=self.provider_name, retryable=retryable, retry_after=after
        )

    def _timeout_error(self, exc: BaseException, deadline: float | None) -> UpstreamTimeout:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            # Nothing was sent: worth another attempt.
            return UpstreamTimeout(
                f"could not connect within {self._timeout.connect:g} s", provider=self.provider_name, retryable=True
            )
        if deadline is not None and asyncio.get_running_loop().time() >= deadline - CLOCK_SLACK_S:
            return UpstreamTimeout(
                f"no complete answer within {self.config.total_timeout:g} s", provider=self.provider_name
            )
        return UpstreamTimeout(f"no answer within {self.config.timeout:g} s", provider=self.provider_name)

    def _unreachable(self, exc: Exception, during_answer: bool = False) -> UpstreamError:
        cause = getattr(exc, "os_error", None) or exc
        what = "the answer broke off" if during_answer else "could not connect"
        error = self._not_the_api(f"{what}: {cause or type(exc).__name__}")
        error.retryable = True
        return error

    def _not_the_api(self, cause: str) -> UpstreamError:
        """The one error for every failure that is not the API's own: the cause goes to the server log only."""
        log.warning(
            "%s model %s at %s: %s",
            self.provider_name,
            self.config.external_model_id,
            urlsplit(self._base).netloc,
            cause,
        )
        return UpstreamError(NOT_THE_API, provider=self.provider_name)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _message(payload: Any) -> str | None:
    """The message of an error in the API's format: OpenAI ``{"error": {"message"}}``, Google's list of
    them, vLLM's ``{"object": "error", "message"}``; None for any other body."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:500]
    if payload.get("object") == "error" and isinstance(payload.get("message"), str):
        return payload["message"][:500]
    return None


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        raw=data,
    )
