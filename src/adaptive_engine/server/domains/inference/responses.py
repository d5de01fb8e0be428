"""POST /api/v1/responses (OpenAI's Responses API) for text and function calls, plain and streamed, on the
same routing, checks and logging as chat: a request is translated to a chat request, the chat answer back.

Request: ``input`` (a string, or items: messages with input_text / input_image / output_text parts,
``function_call`` and ``function_call_output`` items), ``instructions`` (a system message first),
``max_output_tokens``, ``temperature``, ``top_p``, ``tools`` (function tools), ``tool_choice``,
``parallel_tool_calls``, ``text.format`` (text / json_object / json_schema), ``reasoning.effort``, ``metadata``,
``user``, ``service_tier``, ``store`` (ours: keep the completion), ``stream``. The gateway keeps no response
state, so ``previous_response_id``, ``conversation`` and ``background`` are refused, as is every other field:
by name.
Answer: a ``response`` object whose ``output`` holds the message (``output_text``) and the function calls;
streams send the Responses events (created, output items and their deltas, completed; ``error`` when the
answer breaks off).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from adaptive_engine.server.domains.inference.schemas import (
    FunctionCallItem,
    OutputMessage,
    OutputText,
    ResponseObject,
    ResponseUsage,
)
from adaptive_engine.server.domains.inference.service import Call, ServedStream
from adaptive_engine.server.errors import DomainError, Internal, InvalidInput, openai_envelope
from adaptive_engine.server.inference.backends.base import GenerationResult, Usage

log = logging.getLogger(__name__)
# Responses fields -> how they reach the chat request (None: handled by hand below).
RENAMED = {
    "max_output_tokens": "max_completion_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "parallel_tool_calls": "parallel_tool_calls",
    "metadata": "metadata",
    "user": "user",
    "service_tier": "service_tier",
    "store": "store",
    "stream": "stream",
    "model": "model",
    "session_id": "session_id",
    "labels": "labels",
    "ab_campaign": "ab_campaign",
    "top_logprobs": "top_logprobs",
}
BY_HAND = frozenset({"input", "instructions", "tools", "tool_choice", "text", "reasoning"})
STATEFUL = frozenset({"previous_response_id", "conversation", "background"})


def _fail(message: str, param: str) -> InvalidInput:
    return InvalidInput(message, details={"param": param})


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise _fail(f"{where}: a {kind} part needs a string 'text'", where)
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise _fail(f"{where}: an input_image part needs an 'image_url' (file_id is not supported)", where)
        image = {"url": part["image_url"]}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _fail(f"{where}: content part type {kind!r} is not supported", where)


def _messages(raw: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if raw.get("instructions") is not None:
        if not isinstance(raw["instructions"], str):
            raise _fail("instructions must be a string", "instructions")
        messages.append({"role": "system", "content": raw["instructions"]})
    items = raw.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise _fail("input must be a string or a non-empty list of items", "input")
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _fail(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, list):
                content = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
            messages.append({"role": item.get("role"), "content": content})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") and not last.get("content"):
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = [_part(p, f"{where}.output[{j}]") for j, p in enumerate(output)]
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
        else:
            raise _fail(f"{where}: input item type {kind!r} is not supported", where)
    return messages


def _tools(raw: dict[str, Any], chat: dict[str, Any]) -> None:
    tools = raw.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _fail("tools must be a list", "tools")
        out = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise _fail(f"tools[{i}]: only function tools are supported", f"tools[{i}]")
            function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
            out.append({"type": "function", "function": function})
        chat["tools"] = out
    choice = raw.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        chat["tool_choice"] = choice


def to_chat(raw: dict[str, Any]) -> dict[str, Any]:
    """The chat request a Responses request means (then checked like any chat request)."""
    for key, value in raw.items():
        if value is None or key in RENAMED or key in BY_HAND:
            continue
        if key in STATEFUL:
            raise _fail(f"'{key}' is not supported: this server keeps no response state (send the whole input)", key)
        raise _fail(f"'{key}' is not supported on /responses", key)
    chat: dict[str, Any] = {RENAMED[k]: v for k, v in raw.items() if k in RENAMED and v is not None}
    chat["messages"] = _messages(raw)
    _tools(raw, chat)
    text = raw.get("text")
    if text is not None:
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
            chat["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif isinstance(fmt, dict) and fmt.get("type") in ("text", "json_object"):
            chat["response_format"] = {"type": fmt["type"]}
        elif fmt is not None or (isinstance(text, dict) and set(text) - {"format"}):
            raise _fail("text.format must be text, json_object or json_schema", "text")
    reasoning = raw.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or set(reasoning) - {"effort"}:
            raise _fail("reasoning: only 'effort' is supported", "reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if raw.get("top_logprobs") is not None:
        chat["logprobs"] = True
    return chat


# --------------------------------------------------------------------------- the answer


def _usage(usage: Usage) -> ResponseUsage:
    cached = ((usage.raw or {}).get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = ((usage.raw or {}).get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        input_tokens_details={"cached_tokens": cached},
        output_tokens_details={"reasoning_tokens": reasoning},
    )


def _message_item(item_id: str, text: str, status: str = "completed") -> OutputMessage:
    content = [OutputText(text=text)] if status == "completed" else []
    return OutputMessage(id=item_id, status=status, content=content)


def _call_item(call: dict[str, Any], status: str = "completed") -> FunctionCallItem:
    function = call.get("function") or {}
    return FunctionCallItem(
        id=f"fc_{call.get('id')}",
        call_id=call.get("id"),
        name=function.get("name"),
        arguments=function.get("arguments", ""),
        status=status,
    )


def response_object(
    head: dict[str, Any],
    text: str,
    calls: list[dict[str, Any]] | None,
    reason: str | None,
    usage: Usage | None,
    status: str = "completed",
) -> ResponseObject:
    output: list[OutputMessage | FunctionCallItem] = []
    if text or not calls:
        output.append(_message_item(head["message_id"], text))
    output.extend(_call_item(c) for c in calls or [])
    incomplete = status == "completed" and reason == "length"
    return ResponseObject(
        **{k: v for k, v in head.items() if k != "message_id"},
        status="incomplete" if incomplete else status,
        output=output,
        incomplete_details={"reason": "max_output_tokens"} if incomplete else None,
        usage=_usage(usage) if usage is not None else None,
    )


def head_of(call: Call, raw: dict[str, Any]) -> dict[str, Any]:
    completion_id = str(call.completion_ids[0])
    return {
        "id": f"resp_{call.request_id.hex}",
        "object": "response",
        "created_at": call.created,
        "model": call.target.label,
        "message_id": f"msg_{completion_id.replace('-', '')}",
        "error": None,
        "instructions": raw.get("instructions"),
        "metadata": raw.get("metadata") or {},
        "tools": raw.get("tools") or [],
        "tool_choice": raw.get("tool_choice") or "auto",
        "parallel_tool_calls": raw.get("parallel_tool_calls", True) is not False,
        "temperature": raw.get("temperature"),
        "top_p": raw.get("top_p"),
        "max_output_tokens": raw.get("max_output_tokens"),
        "text": raw.get("text") or {"format": {"type": "text"}},
        "completion_id": completion_id,
        "session_id": str(call.session_id),
    }


def answer(call: Call, raw: dict[str, Any], result: GenerationResult) -> ResponseObject:
    choice = result.choices[0]
    calls = (choice.message or {}).get("tool_calls")
    return response_object(head_of(call, raw), choice.text, calls, choice.finish_reason, result.usage)


class _Events:
    """Numbered server-sent events of one streamed response."""

    def __init__(self) -> None:
        self.number = 0

    def __call__(self, kind: str, **data: Any) -> str:
        event = {
            "type": kind,
            "sequence_number": self.number,
            **{name: value.model_dump() if isinstance(value, BaseModel) else value for name, value in data.items()},
        }
        self.number += 1
        return f"event: {kind}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


async def stream(
    call: Call,
    raw: dict[str, Any],
    served: ServedStream,
) -> AsyncIterator[str]:
    """The Responses events of a chat stream (one choice): the message item opens with the first text, each
    function call with its first piece; everything closes when the stream ends. What was served so far (the
    text, the whole function calls) is read from the stream's transcript."""
    emit = _Events()
    head = head_of(call, raw)
    item_id = head["message_id"]
    transcript = served.transcript
    calls = transcript.tool_calls[0]
    known = 0  # how many function calls the events before this one brought
    opened: dict[str, int] = {}  # "message" or call index -> output index
    yield emit("response.created", response=response_object(head, "", [], None, None, status="in_progress"))
    yield emit("response.in_progress", response=response_object(head, "", [], None, None, status="in_progress"))
    try:
        async for event in served:
            if isinstance(event, Usage):
                continue
            if event.text:
                if "message" not in opened:
                    opened["message"] = len(opened)
                    yield emit(
                        "response.output_item.added",
                        output_index=opened["message"],
                        item=_message_item(item_id, "", status="in_progress"),
                    )
                    yield emit(
                        "response.content_part.added",
                        item_id=item_id,
                        output_index=opened["message"],
                        content_index=0,
                        part={"type": "output_text", "text": "", "annotations": []},
                    )
                yield emit(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=opened["message"],
                    content_index=0,
                    delta=event.text,
                    logprobs=[],
                )
            for piece in (event.delta or {}).get("tool_calls") or []:
                if not isinstance(piece, dict):
                    continue
                # Where the transcript folded this piece: a piece without an index starts a new call.
                index = piece.get("index", known)
                known = max(known, index + 1)
                key = f"call{index}"
                if key not in opened:
                    opened[key] = len(opened)
                    yield emit(
                        "response.output_item.added",
                        output_index=opened[key],
                        item=_call_item(
                            {**calls[index], "function": {**calls[index]["function"], "arguments": ""}},
                            status="in_progress",
                        ),
                    )
                arguments = (piece.get("function") or {}).get("arguments")
                if arguments:
                    yield emit(
                        "response.function_call_arguments.delta",
                        item_id=f"fc_{calls[index]['id']}",
                        output_index=opened[key],
                        delta=arguments,
                    )
        text, reason, usage = transcript.texts[0], transcript.reasons[0], transcript.usage or Usage()
        if "message" in opened:
            yield emit(
                "response.output_text.done",
                item_id=item_id,
                output_index=opened["message"],
                content_index=0,
                text=text,
                logprobs=[],
            )
            yield emit(
                "response.content_part.done",
                item_id=item_id,
                output_index=opened["message"],
                content_index=0,
                part={"type": "output_text", "text": text, "annotations": []},
            )
            yield emit("response.output_item.done", output_index=opened["message"], item=_message_item(item_id, text))
        for index, function_call in enumerate(calls):
            position = opened[f"call{index}"]
            yield emit(
                "response.function_call_arguments.done",
                item_id=f"fc_{function_call['id']}",
                output_index=position,
                arguments=function_call["function"]["arguments"],
            )
            yield emit("response.output_item.done", output_index=position, item=_call_item(function_call))
        final = response_object(head, text, calls, reason, usage)
        yield emit("response.incomplete" if final.status == "incomplete" else "response.completed", response=final)
    except Exception as error:  # the answer has started: report in the stream, then end it
        if isinstance(error, DomainError):
            failure: DomainError = error
        else:
            log.exception("a response stream failed")
            failure = Internal("generation failed")
        body = openai_envelope(failure)["error"]
        yield emit("error", code=body.get("code"), message=body.get("message"), param=None)
    finally:
        await served.aclose()
