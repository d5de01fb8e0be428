"""Bodies of the OpenAI-compatible data plane (shapes of the official client's openapi.json and of the
``openai`` client; unknown fields are accepted and ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


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
