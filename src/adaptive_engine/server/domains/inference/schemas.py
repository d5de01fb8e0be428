"""Bodies of the OpenAI-compatible data plane (shapes of the official client's openapi.json and of the
``openai`` client). The typed fields are checked here; every other field is kept and handled by
``openai_fields`` (sent to external providers as given, refused by name for local models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatRequestMessage(_Body):
    # Named apart from the logging routes' ChatMessageIn: the OpenAPI document names models by class name.
    role: Any = None
    content: Any = None
    name: str | None = None


class StreamOptions(_Body):
    include_usage: bool | None = None


class GenerationBody(_Body):
    model: str
    stop: list[str] | str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None  # the openai client's newer name
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    seed: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    session_id: str | None = None
    user: str | None = None
    ab_campaign: str | None = None
    labels: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: list[str] | str | None) -> list[str] | None:
        return [value] if isinstance(value, str) else value


class ChatBody(GenerationBody):
    messages: list[ChatRequestMessage]


class CompletionBody(GenerationBody):
    prompt: str | list[str]


class EmbeddingBody(_Body):
    model: str
    input: str | list[str]
    encoding_format: str | None = None
    dimensions: int | None = None
    user: str | None = None
    session_id: str | None = None


class ResponsesBody(_Body):
    """OpenAI's Responses API request (domains/inference/responses.py says which fields are supported)."""

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool | None = None


# --------------------------------------------------------------------------- answers
# What the data plane sends back, field for field in the order clients have always got them, serialized by
# pydantic (``to_json``). Built with the validating constructor: pydantic-core checks the few fields faster than
# ``model_construct`` fills them in Python (bench/answer_building.py).


def _absent_when_none(value: Any) -> bool:
    return value is None


class Answer(BaseModel):
    # A provider's top-level fields passed back as they came (system_fingerprint, service_tier) follow ours.
    model_config = ConfigDict(extra="allow")

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


class AnswerHead(Answer):
    """What every chat and completion answer and stream event starts with: our request id (``id``), the
    OpenAI object name, the target as ``use_case/model`` and the session."""

    id: str
    object: str
    created: int
    model: str
    session_id: str


class ChatChoice(Answer):
    index: int
    # The assistant message: a provider's goes back as it came (tool_calls, refusal, annotations...), with our id.
    message: dict[str, Any]
    finish_reason: str | None
    completion_id: str
    model: str
    logprobs: Any = Field(default=None, exclude_if=_absent_when_none)


class ChatCompletionResponse(AnswerHead):
    object: str = "chat.completion"
    choices: list[ChatChoice]
    usage: dict[str, Any]


class ChatChunkChoice(Answer):
    index: int
    delta: dict[str, Any]
    completion_id: str
    finish_reason: str | None
    logprobs: Any = Field(default=None, exclude_if=_absent_when_none)


class CompletionChoice(Answer):
    index: int
    text: str
    finish_reason: str | None
    logprobs: Any
    completion_id: str
    model: str


class CompletionChunkChoice(Answer):
    index: int
    text: str
    completion_id: str
    model: str
    finish_reason: str | None
    logprobs: Any


class CompletionResponse(AnswerHead):
    object: str = "text_completion"
    choices: list[CompletionChoice]
    usage: dict[str, Any]


class ChatCompletionChunk(AnswerHead):
    """One event of a streamed chat; the last one, when the caller asked for usage, has no choices and the
    usage."""

    object: str = "chat.completion.chunk"
    choices: list[ChatChunkChoice]
    usage: dict[str, Any] | None = Field(default=None, exclude_if=_absent_when_none)


class CompletionChunk(AnswerHead):
    """One event of a streamed completion (same object name as the whole answer, as OpenAI's)."""

    object: str = "text_completion"
    choices: list[CompletionChunkChoice]
    usage: dict[str, Any] | None = Field(default=None, exclude_if=_absent_when_none)


class Embedding(Answer):
    object: str = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32s when asked for


class EmbeddingUsage(Answer):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class EmbeddingResponse(Answer):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(Answer):
    """A name the caller may send as ``model``, in OpenAI's shape, plus where it leads."""

    id: str
    object: str = "model"
    created: int
    owned_by: str
    use_case: str
    model: str
    kind: str
    status: str


class ModelList(Answer):
    object: str = "list"
    data: list[ModelCard]


class OutputText(Answer):
    type: str = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(Answer):
    type: str = "message"
    id: str
    status: str
    role: str = "assistant"
    content: list[OutputText]


class FunctionCallItem(Answer):
    type: str = "function_call"
    id: str
    call_id: str | None
    name: str | None
    arguments: str
    status: str


class ResponseUsage(Answer):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens_details: dict[str, int]


class ResponseObject(Answer):
    """A Responses API answer. The request's own settings (instructions, metadata, tools, sampling, text
    format) come back as they were sent, so they stay untyped here."""

    id: str
    object: str = "response"
    created_at: int
    model: str
    error: Any
    instructions: Any
    metadata: Any
    tools: Any
    tool_choice: Any
    parallel_tool_calls: bool
    temperature: Any
    top_p: Any
    max_output_tokens: Any
    text: Any
    completion_id: str
    session_id: str
    status: str
    output: list[OutputMessage | FunctionCallItem]
    incomplete_details: dict[str, str] | None
    usage: ResponseUsage | None
