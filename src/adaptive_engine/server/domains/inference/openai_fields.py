"""The OpenAI fields of a chat or completion request: checked for every target, sent to providers as given,
refused by name where the target cannot honour them. Nothing the caller sends is silently dropped.

- The gateway's own fields (``GATEWAY_FIELDS``) are read here and never sent upstream.
- Every other field with a value goes to a passthrough backend (an external provider) as the caller gave it,
  over the model's configured defaults; fields the gateway does not know go too (like the ``openai``
  client's ``extra_body``): the provider is the judge of them.
- A local model takes only what it implements (``LOCAL_FIELDS``, text content, and function tools when its
  chat template renders tools); anything else is a 400 that names the field.
- Whatever the target, what the gateway can check is checked before any work: messages (tool calls and tool
  results included), tools (each function's parameters must be a valid JSON schema), tool_choice (it must
  name a tool of the request), response_format (its schema too), logprobs, metadata.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import jsonschema
import pydantic_core

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.inference.tool_calls import ToolUse

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
# Read by the gateway itself (routing, logging, streaming); the provider gets its own stream options.
GATEWAY_FIELDS = frozenset({"model", "session_id", "labels", "ab_campaign", "store", "stream", "stream_options"})
# Fields of the official Adaptive client that this server does not implement: refused rather than ignored.
NOT_IMPLEMENTED = frozenset({"system_prompt_args", "tags", "use_tools", "max_ttft_ms", "serialized_python"})
# What local models implement (besides GATEWAY_FIELDS).
LOCAL_FIELDS = frozenset(
    {
        "messages",
        "prompt",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "seed",
        "stop",
        "user",
        "metadata",
    }
)
LOCAL_MESSAGE_KEYS = frozenset({"role", "content"})
TOOL_MESSAGE_KEYS = frozenset({"tool_calls", "tool_call_id"})  # local models whose template renders tools
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20


def _fail(message: str, param: str) -> InvalidInput:
    return InvalidInput(message, details={"param": param})


def given(raw: dict[str, Any]) -> dict[str, Any]:
    """The caller's fields that have a value (JSON null means not given, as in OpenAI's API)."""
    return {k: v for k, v in raw.items() if v is not None}


# --------------------------------------------------------------------------- checks for every target


def check_schema(schema: Any, where: str) -> None:
    """``schema`` must be a JSON schema (an object) that its draft's meta-schema accepts."""
    if not isinstance(schema, dict):
        raise _fail(f"{where} must be a JSON schema (an object)", where)
    problem = _schema_problem(pydantic_core.to_json(schema))
    if problem is not None:
        raise _fail(f"{where} is not a valid JSON schema: {problem}", where)


@functools.lru_cache(maxsize=1024)
def _schema_problem(encoded: bytes) -> str | None:
    """Why a schema (as JSON) is not valid, or None. Cached: checking against the meta-schema costs about a
    millisecond, and an application sends the same tools and formats on every call."""
    schema = pydantic_core.from_json(encoded)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path)
        return exc.message + (f" (at '{path}')" if path else "")
    return None


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise _fail(f"{where}.content must be a string or a non-empty list of content parts", f"{where}.content")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _fail(f"{where}.content[{j}] must be an object with a 'type'", f"{where}.content")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise _fail(f"{where}.content[{j}]: a text part needs a string 'text'", f"{where}.content")


def _tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise _fail(f"{where}.tool_calls must be a non-empty list", f"{where}.tool_calls")
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            raise _fail(f"{at} needs an 'id'", at)
        if call.get("type", "function") == "function":
            function = call.get("function")
            if (
                not isinstance(function, dict)
                or not isinstance(function.get("name"), str)
                or not isinstance(function.get("arguments"), str)
            ):
                raise _fail(f"{at}.function needs a 'name' and 'arguments' (a JSON string)", at)


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """The chat messages, checked; returned as given (dicts)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("chat: messages must not be empty")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _fail(f"{where} must be an object", where)
        role = message.get("role")
        if not isinstance(role, str) or not role.strip():
            raise _fail(f"chat.{where}: a message needs a role", where)
        if role not in ROLES:
            raise _fail(f"chat.{where}: unknown role '{role}' (expected one of {', '.join(sorted(ROLES))})", where)
        content = message.get("content")
        if role == "assistant" and message.get("tool_calls") is not None:
            _tool_calls(message["tool_calls"], where)
            if content is not None and content != "":
                _content(content, where)
            continue
        if role == "assistant" and content is None and (message.get("refusal") or message.get("function_call")):
            continue
        if role == "tool" and (not isinstance(message.get("tool_call_id"), str) or not message["tool_call_id"]):
            raise _fail(f"chat.{where}: a tool message needs the 'tool_call_id' it answers", where)
        if content is None or (isinstance(content, str) and not content.strip()):
            raise _fail(f"chat.{where}: a message needs content", where)
        _content(content, where)
    return messages


def check_tools(raw: dict[str, Any]) -> None:
    tools = raw.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            raise _fail("tools must be a non-empty list", "tools")
        if len(tools) > MAX_TOOLS:
            raise _fail(f"at most {MAX_TOOLS} tools per request", "tools")
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
                raise _fail(f"{where} must be an object with a 'type' (e.g. 'function')", where)
            if tool["type"] != "function":
                continue  # another kind of tool: the provider knows it or refuses it
            function = tool.get("function")
            if not isinstance(function, dict):
                raise _fail(f"{where}.function must be an object with a 'name'", where)
            name = function.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                raise _fail(f"{where}.function.name must be 1-64 letters, digits, '_' or '-' (got {name!r})", where)
            if name in names:
                raise _fail(f"{where}: two tools are named '{name}'", where)
            names.append(name)
            if function.get("parameters") is not None:
                check_schema(function["parameters"], f"{where}.function.parameters")
            if function.get("description") is not None and not isinstance(function["description"], str):
                raise _fail(f"{where}.function.description must be a string", where)
            if function.get("strict") is not None and not isinstance(function["strict"], bool):
                raise _fail(f"{where}.function.strict must be a boolean", where)
    choice = raw.get("tool_choice")
    if choice is not None:
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                raise _fail(f"tool_choice must be 'none', 'auto', 'required' or a tool (got '{choice}')", "tool_choice")
            if choice != "none" and tools is None:
                raise _fail(f"tool_choice '{choice}' needs tools", "tool_choice")
        elif isinstance(choice, dict):
            if tools is None:
                raise _fail("tool_choice names a tool but the request has no tools", "tool_choice")
            if choice.get("type") == "function":
                function = choice.get("function")
                name = function.get("name") if isinstance(function, dict) else None
                if not isinstance(name, str):
                    raise _fail("tool_choice.function needs the 'name' of a tool", "tool_choice")
                if name not in names:
                    known = ", ".join(f"'{n}'" for n in names) or "none"
                    raise _fail(
                        f"tool_choice names tool '{name}', which is not in tools (function tools: {known})",
                        "tool_choice",
                    )
        else:
            raise _fail("tool_choice must be a string or an object", "tool_choice")
    parallel = raw.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _fail("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        if tools is None:
            raise _fail("parallel_tool_calls needs tools", "parallel_tool_calls")


def check_response_format(value: Any) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise _fail(
            f"response_format.type must be 'text', 'json_object' or 'json_schema' (got {kind!r})", "response_format"
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise _fail("response_format.json_schema must be an object with a 'name' and a 'schema'", "response_format")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _fail(
            f"response_format.json_schema.name must be 1-64 letters, digits, '_' or '-' (got {name!r})",
            "response_format",
        )
    if spec.get("schema") is not None:
        check_schema(spec["schema"], "response_format.json_schema.schema")
    if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
        raise _fail("response_format.json_schema.strict must be a boolean", "response_format")


def check_logprobs(raw: dict[str, Any]) -> None:
    logprobs, top = raw.get("logprobs"), raw.get("top_logprobs")
    if logprobs is not None and not isinstance(logprobs, bool) and "messages" in raw:
        raise _fail("logprobs must be a boolean", "logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise _fail(f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}", "top_logprobs")
        if logprobs is not True:
            raise _fail("top_logprobs needs logprobs: true", "top_logprobs")


def check_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail("metadata must be an object of string values", "metadata")
    return dict(value)


def check(raw: dict[str, Any]) -> None:
    """Every check that holds whatever the target."""
    for name in NOT_IMPLEMENTED:
        if raw.get(name) is not None:
            raise _fail(f"'{name}' is not supported by this server", name)
    check_tools(raw)
    check_response_format(raw.get("response_format"))
    check_logprobs(raw)


# --------------------------------------------------------------------------- what reaches the target


def upstream_body(raw: dict[str, Any]) -> dict[str, Any]:
    """What a passthrough backend sends (over the model's configured defaults): every field the caller gave,
    except the gateway's own."""
    return {k: v for k, v in raw.items() if v is not None and k not in GATEWAY_FIELDS}


def _no_tools(model_key: str) -> str:
    return f"model '{model_key}' cannot call tools: its chat template has no tool support"


def refuse_for_local(
    raw: dict[str, Any], model_key: str, structured: bool = False, template_takes_tools: bool = False
) -> None:
    """A local model implements LOCAL_FIELDS and text messages (and ``response_format`` when ``structured``:
    it enforces a grammar): anything else is a 400 naming it."""
    for key, value in raw.items():
        if value is None or key in GATEWAY_FIELDS or key in LOCAL_FIELDS:
            continue
        if key in TOOL_FIELDS:
            if not template_takes_tools:
                raise _fail(f"{_no_tools(model_key)}; remove '{key}'", key)
            choice = raw.get("tool_choice")
            if isinstance(choice, dict) and choice.get("type") != "function":
                raise _fail(
                    f"local model '{model_key}' takes a tool_choice of 'none', 'auto', 'required' or a "
                    f"function (got type '{choice.get('type')}')",
                    "tool_choice",
                )
            for i, tool in enumerate(raw.get("tools") or []):
                if tool.get("type") != "function":
                    raise _fail(
                        f"local model '{model_key}' calls function tools only: tools[{i}] is a "
                        f"'{tool.get('type')}' tool",
                        f"tools[{i}]",
                    )
            continue
        if key == "response_format":
            if value.get("type") == "text" or structured:
                continue
            raise _fail(
                f"response_format '{value.get('type')}' on local models is not supported yet (model '{model_key}')", key
            )
        if key == "logprobs" and value is False:
            continue
        if key in ("logprobs", "top_logprobs"):
            if "messages" in raw:  # chat: computed by the local engine (check_logprobs validated them)
                continue
            raise _fail(
                f"{key} on /completions is not supported by local models (model '{model_key}'); "
                f"/chat/completions computes them",
                key,
            )
        raise _fail(f"'{key}' is not supported by local model '{model_key}'", key)
    for i, message in enumerate(raw.get("messages") or []):
        where = f"messages[{i}]"
        if (message.get("role") == "tool" or message.get("tool_calls") is not None) and not template_takes_tools:
            raise _fail(f"{_no_tools(model_key)}: {where} is a tool call or a tool result", where)
        for key, value in message.items():
            if (
                value is not None
                and key not in LOCAL_MESSAGE_KEYS
                and not (template_takes_tools and key in TOOL_MESSAGE_KEYS)
            ):
                raise _fail(f"{where}.{key} is not supported by local model '{model_key}'", f"{where}.{key}")
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") != "text":
                    raise _fail(
                        f"model '{model_key}' takes text only: {where} has a '{part.get('type')}' content part", where
                    )


def local_tool_use(raw: dict[str, Any]) -> ToolUse | None:
    """What a chat request asks of a local model about tools (checked by check_tools and refuse_for_local)."""
    if not raw.get("tools"):
        return None
    return ToolUse(tools=raw["tools"], choice=raw.get("tool_choice") or "auto")


def local_logprobs(raw: dict[str, Any]) -> int | None:
    """How many alternatives per token a chat request asks the local engine for; None when it asks for no log
    probabilities."""
    if raw.get("logprobs") is not True:
        return None
    return int(raw.get("top_logprobs") or 0)


def output_schema(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema ``response_format`` asks the answer to follow (json_object: any object); None for text."""
    value = raw.get("response_format") or {}
    if value.get("type") == "json_object":
        return {"type": "object"}
    if value.get("type") == "json_schema":
        return value["json_schema"].get("schema") or {"type": "object"}
    return None


def text_of(content: Any) -> str:
    """The text of a message's content (a string, or the text parts of a list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def merge_tool_call_deltas(calls: list[dict[str, Any]], pieces: Sequence[Any]) -> None:
    """Fold a stream's tool-call pieces (OpenAI's ``delta.tool_calls``) into whole calls: the first piece of a
    call brings its id, type and name, the next ones more of its arguments."""
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        index = piece.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if piece.get("id"):
            call["id"] = piece["id"]
        if piece.get("type"):
            call["type"] = piece["type"]
        function = piece.get("function") or {}
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]
