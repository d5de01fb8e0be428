"""The one interface every inference backend implements, and the values that cross it.

A backend turns an already validated :class:`GenerationRequest` into a :class:`GenerationResult`
(``generate``) or an async stream of :class:`TextDelta` events closed by one :class:`Usage`
(``stream``), and texts into vectors (``embed``). Backends know nothing about use cases, the
database or HTTP routes; the server's inference manager owns them and maps their errors.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adaptive_engine.server import errors
from adaptive_engine.server.inference.tool_calls import ToolUse

Role = Literal["system", "user", "assistant", "tool", "developer"]
# "stop" and "length" from every backend; external providers may add their own (e.g. "content_filter").
FinishReason = str


# --------------------------------------------------------------------------- errors


class BackendError(errors.DomainError):
    """Base of every error a backend raises; each is also the matching DomainError of the server."""


class BackendNotReady(BackendError, errors.Unavailable):
    """The backend is not loaded (or failed to load), so it cannot serve."""


class BackendUnsupported(BackendError, errors.InvalidInput):
    """The backend cannot do what was asked (e.g. embeddings from a chat-only model)."""


class BackendInvalidRequest(BackendError, errors.InvalidInput):
    """The request is well formed but this backend cannot serve it (e.g. prompt longer than the context)."""


class BackendLoadError(BackendError, errors.Unavailable):
    """Loading the model failed; the message says why."""


class UpstreamError(BackendError, errors.UpstreamError):
    """An external provider answered with an error status, or could not be reached (``status`` is None).

    ``upstream_message`` is the provider's own message; ``message`` adds who answered and the status."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        where = f"{provider} " if provider else "upstream provider "
        code = f" ({status})" if status is not None else ""
        super().__init__(f"{where}error{code}: {message}", details={"upstream_status": status} if status else None)
        self.upstream_message = message
        self.status = status
        self.provider = provider
        # Worth another attempt (a connection error, 429 or 5xx), after ``retry_after`` seconds if the provider said.
        self.retryable = retryable
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError, errors.UpstreamTimeout):
    """An external provider did not answer in time."""


def failure_kind(error: BaseException) -> str:
    """A short, bounded name of what failed (a metric label): "timeout", the provider's status code,
    "unreachable", or the error's code for our own errors."""
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, UpstreamError):
        return str(error.status) if error.status is not None else "unreachable"
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else "internal"


# --------------------------------------------------------------------------- requests and results


@dataclass(slots=True)
class ChatMessage:
    role: str
    content: str
    # Tool use (local models whose template renders tools): an assistant's calls, in OpenAI's shape, and the
    # call a "tool" message answers.
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


@dataclass(slots=True)
class GenerationParams:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    n: int = 1
    seed: int | None = None
    # A regular expression the output must match (local backends; see inference/constraints.py).
    constraint: str | None = None
    # An llguidance grammar the output must follow, e.g. a JSON schema's (local backends; inference/grammar.py).
    grammar: str | None = None
    # Log probabilities of the generated tokens, with this many alternatives per token (0 to 20); None: not
    # asked for (local backends; inference/logprobs.py).
    logprobs: int | None = None


@dataclass(slots=True)
class GenerationRequest:
    """Either ``messages`` (chat) or ``prompt`` (raw completion) is set."""

    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    user: str | None = None
    # For backends that speak the OpenAI wire format (``Backend.passthrough``): the body to send as the caller
    # gave it (messages or prompt included, the model's configured defaults merged, the gateway's own fields
    # removed). None: the backend builds its body from ``params`` (the server's own callers, e.g. judges).
    upstream: dict[str, Any] | None = None
    # Local backends: the tools the chat template shows and how a call is made (inference/tool_calls.py).
    tool_use: ToolUse | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise BackendInvalidRequest("a generation request needs exactly one of messages or prompt")


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # The provider's usage object as it came (token details included), returned to the caller unchanged.
    raw: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Choice:
    index: int
    text: str
    finish_reason: FinishReason
    # Passthrough backends: the provider's message as it came (tool_calls, refusal...), and its logprobs.
    message: dict[str, Any] | None = None
    logprobs: Any = None


@dataclass(slots=True)
class GenerationResult:
    choices: list[Choice]
    usage: Usage
    model: str = ""
    # Passthrough backends: top-level fields of the provider's answer to return (system_fingerprint...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TextDelta:
    """Text produced for choice ``index``; the last delta of a choice carries its ``finish_reason``."""

    index: int
    text: str
    finish_reason: FinishReason | None = None
    # Passthrough backends: the provider's delta as it came (tool-call pieces...), and its logprobs.
    delta: dict[str, Any] | None = None
    logprobs: Any = None


StreamEvent = TextDelta | Usage


@dataclass(slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage


class Capability(enum.StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"


@dataclass(slots=True)
class Health:
    ok: bool
    detail: str = ""


# --------------------------------------------------------------------------- the interface


class Backend(abc.ABC):
    """An inference backend. ``load`` before use, ``unload`` when done; both are idempotent."""

    capabilities: frozenset[Capability] = frozenset()
    # True when the backend forwards a request's OpenAI fields to a provider as given (GenerationRequest.upstream);
    # requests to the others may only use what GenerationParams holds.
    passthrough: bool = False
    # True when GenerationParams.grammar is enforced (structured output by constrained decoding).
    structured_output: bool = False
    # Model keys that serve a request this backend failed before answering (the model's gateway config; set
    # by the inference manager).
    fallbacks: tuple[str, ...] = ()
    # Failures in a row that handed the request to another model, and until when (monotonic clock) this
    # backend is skipped while a fallback can serve (domains/inference/service.py: COOL_DOWN_*).
    failures: int = 0
    cool_until: float = 0.0
    # The gateway settings it was built with (db/refs.py: gateway_text), to notice a change made elsewhere.
    gateway: str | None = None
    # Called with the error before each further attempt of a call (external backends: metrics; set by the manager).
    on_retry: Callable[[BaseException], None] | None = None

    @abc.abstractmethod
    async def load(self) -> None: ...

    @abc.abstractmethod
    async def unload(self) -> None: ...

    @abc.abstractmethod
    async def health(self) -> Health: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Default: collect the stream. Backends with a cheaper non-streaming path override it."""
        n = request.params.n
        texts = [""] * n
        reasons: list[FinishReason] = ["length"] * n
        usage = Usage()
        async for event in self.stream(request):
            if isinstance(event, Usage):
                usage = event
            else:
                texts[event.index] += event.text
                if event.finish_reason is not None:
                    reasons[event.index] = event.finish_reason
        return GenerationResult(
            choices=[Choice(index=i, text=texts[i], finish_reason=reasons[i]) for i in range(n)],
            usage=usage,
        )

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        raise BackendUnsupported(f"{type(self).__name__} does not generate text")

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        raise BackendUnsupported(f"{type(self).__name__} does not compute embeddings")
