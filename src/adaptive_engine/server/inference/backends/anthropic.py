"""Anthropic's Messages API behind the OpenAI wire format: requests are translated to it, answers (tool calls
and streams included) back, over the same pooled client, timeouts and retries as the other providers.

Request, OpenAI -> Anthropic: system and developer messages become ``system``; ``tool`` messages become
``tool_result`` blocks of a user turn; an assistant's ``tool_calls`` become ``tool_use`` blocks; image parts
(data URLs or http(s) URLs) become ``image`` blocks; consecutive messages of one role are merged (the API
wants turns to alternate). ``max_completion_tokens``/``max_tokens`` -> ``max_tokens`` (the API requires it:
``DEFAULT_MAX_TOKENS`` when the caller and the model's defaults give none), ``stop`` -> ``stop_sequences``,
``user`` -> ``metadata.user_id``, ``tools`` -> ``input_schema`` tools, ``tool_choice`` -> auto/any/none/tool,
``parallel_tool_calls: false`` -> ``disable_parallel_tool_use``. OpenAI fields the API has no equivalent for
(``n``, ``logprobs``, ``response_format``, ``seed``, penalties...) are refused by name; fields unknown to the
gateway (``top_k``, ``thinking``...) go as given.

Answer, Anthropic -> OpenAI: text blocks -> ``content``, ``tool_use`` blocks -> ``tool_calls`` (input as a JSON
string); stop reasons end_turn/stop_sequence -> stop, max_tokens -> length, tool_use -> tool_calls, refusal ->
content_filter; streamed text and ``input_json_delta`` pieces -> OpenAI deltas.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from .base import (
    BackendInvalidRequest,
    BackendUnsupported,
    Choice,
    EmbeddingResult,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
    TextDelta,
    Usage,
)
from .external import ExternalBackend

DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
# OpenAI fields with no Anthropic equivalent: refused rather than dropped.
NO_EQUIVALENT = frozenset(
    {
        "n",
        "logprobs",
        "top_logprobs",
        "response_format",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "functions",
        "function_call",
    }
)
# Fields this module translates (the rest goes as given).
TRANSLATED = frozenset(
    {
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "metadata",
        "stream",
        "stream_options",
        "model",
    }
)


def _refuse(message: str) -> BackendInvalidRequest:
    return BackendInvalidRequest(message)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
    if not isinstance(url, str):
        raise _refuse(f"{where}: an image_url part needs image_url.url")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";")[0]
        if ";base64" not in head or not media_type:
            raise _refuse(f"{where}: Anthropic takes base64 data URLs (data:<type>;base64,...)")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, where))
        else:
            raise _refuse(f"{where}: Anthropic models take no '{kind}' content part")
    return blocks


def _messages(messages: Sequence[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
            continue
        if role == "tool":
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message["tool_call_id"],
                    "content": _text(message.get("content")),
                }
            ]
            role = "user"
        elif role == "assistant":
            blocks = _blocks(message.get("content"), where)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    raise _refuse(f"{where}: tool call '{call.get('id')}' has arguments that are not JSON") from None
                blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": arguments})
        else:
            blocks = _blocks(message.get("content"), where)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return ("\n\n".join(system) if system else None), turns


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        out["tools"] = []
        for tool in tools:
            if tool.get("type") != "function":
                out["tools"].append(tool)  # an Anthropic tool (web search...) given as such
                continue
            function = tool["function"]
            item = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object"}}
            if function.get("description"):
                item["description"] = function["description"]
            out["tools"].append(item)
    choice = body.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if choice in ("auto", "none"):
        mapped = {"type": choice}
    elif choice == "required":
        mapped = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    elif choice is not None:
        raise _refuse(f"tool_choice {choice!r} has no Anthropic equivalent")
    if body.get("parallel_tool_calls") is False:
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    if mapped is not None:
        out["tool_choice"] = mapped


def translate(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat body (the caller's fields over the model's defaults) as an Anthropic Messages body."""
    refused = sorted(k for k in NO_EQUIVALENT if body.get(k) is not None and not (k == "n" and body[k] == 1))
    if refused:
        raise _refuse(f"Anthropic models do not support {', '.join(repr(k) for k in refused)}")
    system, turns = _messages(body["messages"])
    out: dict[str, Any] = {k: v for k, v in body.items() if k not in TRANSLATED and k not in NO_EQUIVALENT}
    out["model"] = model
    out["messages"] = turns
    if system is not None:
        out["system"] = system
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    out["max_tokens"] = limit if limit is not None else DEFAULT_MAX_TOKENS
    stop = body.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") is not None:
        out["metadata"] = {"user_id": str(body["user"])}
    _tools(body, out)
    return out


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    prompt = (
        int(data.get("input_tokens") or 0)
        + int(data.get("cache_read_input_tokens") or 0)
        + int(data.get("cache_creation_input_tokens") or 0)
    )
    completion = int(data.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        raw={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": int(data.get("cache_read_input_tokens") or 0)},
        },
    )


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": json.dumps(block.get("input") or {})},
    }


class AnthropicBackend(ExternalBackend):
    """An Anthropic model (chat only) spoken to through its Messages API."""

    def _messages_body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        if request.messages is None:
            raise BackendUnsupported("Anthropic models serve chat only: use /chat/completions")
        if request.upstream is not None:
            body = {**self.config.defaults, **request.upstream}
        else:  # the server's own callers
            body = self._params_body(request)
        out = translate(body, self.config.external_model_id)
        if stream:
            out["stream"] = True
        return out

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        data = await self._post("messages", self._messages_body(request, stream=False))
        try:
            blocks = data["content"]
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            calls = [_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
            reason = STOP_REASONS.get(data.get("stop_reason") or "", data.get("stop_reason") or "stop")
            usage = _usage(data.get("usage"))
        except (KeyError, TypeError, AttributeError):
            raise self._not_the_api(f"unexpected answer shape: {str(data)[:200]}") from None
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        keep = request.upstream is not None
        return GenerationResult(
            choices=[Choice(index=0, text=text, finish_reason=reason, message=message if keep else None)],
            usage=usage,
            model=data.get("model") or self.config.external_model_id,
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        keep = request.upstream is not None
        usage = Usage()
        input_usage: dict[str, Any] = {}
        calls: dict[int, int] = {}  # content block index -> tool call index
        async for event in self._chunks("messages", self._messages_body(request, stream=True)):
            kind = event.get("type")
            if kind == "message_start":
                input_usage = (event.get("message") or {}).get("usage") or {}
            elif kind == "content_block_start":
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use":
                    calls[event.get("index", 0)] = position = len(calls)
                    piece = {
                        "index": position,
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": ""},
                    }
                    if keep:
                        yield TextDelta(index=0, text="", delta={"tool_calls": [piece]})
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield TextDelta(index=0, text=delta["text"], delta={"content": delta["text"]} if keep else None)
                elif delta.get("type") == "input_json_delta" and keep and event.get("index") in calls:
                    piece = {"index": calls[event["index"]], "function": {"arguments": delta.get("partial_json", "")}}
                    yield TextDelta(index=0, text="", delta={"tool_calls": [piece]})
            elif kind == "message_delta":
                reason = (event.get("delta") or {}).get("stop_reason")
                usage = _usage({**input_usage, **(event.get("usage") or {})})
                if reason:
                    yield TextDelta(
                        index=0, text="", finish_reason=STOP_REASONS.get(reason, reason), delta={} if keep else None
                    )
        yield usage

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        raise BackendUnsupported("Anthropic models do not compute embeddings")
