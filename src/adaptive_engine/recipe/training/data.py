"""Turning dataset rows into the conversational records TRL trains on, with errors that name the row.

Accepted shapes (``prompt`` is a string or a list of chat messages; a completion is a string or one
assistant message):
- sft:  ``{"messages": [..., {"role": "assistant", ...}]}`` or ``{"prompt": ..., "completion": ...}``
- dpo:  ``{"prompt": ..., "chosen": ..., "rejected": ...}`` (or ``messages`` as the prompt)
- grpo: ``{"prompt": ...}`` or ``{"messages": [...]}``; every other key is passed to the reward function

Tool use, as the gateway logs it: an assistant message may carry OpenAI ``tool_calls`` (its content may then be
null), a ``tool`` message its ``tool_call_id``, and sft and dpo rows the request's ``tools``; the chat template
renders them (a model whose template has no tool support is refused such rows: see ``check_template``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .base import TrainingInputError

ROLES = {"system", "user", "assistant", "tool"}
Message = dict[str, Any]


def _messages(value: Any, where: str) -> list[Message]:
    if isinstance(value, str):
        if not value.strip():
            raise TrainingInputError(f"{where} is empty")
        return [_message("user", value)]
    if not isinstance(value, list) or not value:
        raise TrainingInputError(f"{where} must be a string or a non-empty list of messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message:
            raise TrainingInputError(f"{where}[{i}] must be an object with role and content")
        role, content, calls = message["role"], message.get("content"), message.get("tool_calls")
        if role not in ROLES:
            raise TrainingInputError(f"{where}[{i}] has unknown role {role!r}")
        if calls is not None:
            if role != "assistant":
                raise TrainingInputError(f"{where}[{i}] has tool_calls but is not an assistant message")
            _check_calls(calls, f"{where}[{i}].tool_calls")
            content = content or ""
        if not isinstance(content, str):
            raise TrainingInputError(f"{where}[{i}].content must be a string")
        out.append(_message(role, content, calls, message.get("tool_call_id")))
    return out


def _message(role: str, content: str, calls: Any = None, call_id: Any = None) -> Message:
    # The same keys on every message: the records become an Arrow table, whose rows share one schema.
    return {"role": role, "content": content, "tool_calls": calls, "tool_call_id": call_id}


def _check_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise TrainingInputError(f"{where} must be a non-empty list")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if (
            not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise TrainingInputError(
                f"{where}[{j}] must be a function call: an object with function.name and function.arguments (JSON text)"
            )


def _tools(row: Mapping[str, Any], where: str) -> str | None:
    """A row's ``tools`` as JSON text (TRL reads it so; as text, rows with different tools share a schema)."""
    tools = row.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
        raise TrainingInputError(f"{where}.tools must be a list of tool objects")
    return json.dumps(tools)


def _has_tool_use(record: Mapping[str, Any]) -> bool:
    return record.get("tools") is not None or any(
        m.get("tool_calls") or m["role"] == "tool"
        for key in ("prompt", "completion", "chosen", "rejected")
        for m in record.get(key) or []
    )


def check_template(records: list[dict[str, Any]], tokenizer: Any, model: str) -> None:
    """Rows with tool use need a chat template that renders tools and calls, or the model would learn empty
    turns where the calls were."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if "tool" in (template if isinstance(template, str) else str(template)):
        return
    for index, record in enumerate(records):
        if _has_tool_use(record):
            raise TrainingInputError(
                f"row {index} holds tool calls or tools, but the chat template of {model} "
                "has no tool support: it would train on turns without them"
            )


def _completion(value: Any, where: str) -> list[Message]:
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, str):
        return [_message("assistant", value)]
    messages = _messages(value, where)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise TrainingInputError(f"{where} must be a string or one assistant message")
    return messages


def _prompt(row: Mapping[str, Any], where: str) -> list[Message]:
    if "prompt" in row:
        return _messages(row["prompt"], f"{where}.prompt")
    if "messages" in row:
        return _messages(row["messages"], f"{where}.messages")
    raise TrainingInputError(f"{where} has neither prompt nor messages")


def _row(row: Any, index: int) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise TrainingInputError(f"row {index} is not an object")
    return row


def sft_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows → ``{"prompt": [messages], "completion": [assistant message]}``."""
    out = []
    for index, raw in enumerate(rows):
        row = _row(raw, index)
        where = f"row {index}"
        if "chosen" in row or "rejected" in row:
            raise TrainingInputError(
                f"{where} is a preference pair (chosen/rejected); sft needs messages ending with an assistant "
                "reply, or prompt + completion (map the preference data to completions first, or use dpo)"
            )
        if "completion" in row:
            prompt = _prompt(row, where)
            completion = _completion(row["completion"], f"{where}.completion")
        elif "messages" in row:
            messages = _messages(row["messages"], f"{where}.messages")
            if messages[-1]["role"] != "assistant" or len(messages) < 2:
                raise TrainingInputError(f"{where}.messages must end with an assistant reply after a prompt")
            prompt, completion = messages[:-1], messages[-1:]
        else:
            raise TrainingInputError(f"{where} has no completion (sft needs messages or prompt + completion)")
        if not completion[0]["content"].strip() and not completion[0]["tool_calls"]:
            raise TrainingInputError(f"{where} has an empty completion")
        out.append({"prompt": prompt, "completion": completion, "tools": _tools(row, where)})
    if not out:
        raise TrainingInputError("no rows to train on")
    return out


def dpo_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows → ``{"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}``."""
    out = []
    for index, raw in enumerate(rows):
        row = _row(raw, index)
        where = f"row {index}"
        if "chosen" not in row or "rejected" not in row:
            raise TrainingInputError(f"{where} is not a preference pair: dpo needs prompt, chosen and rejected")
        prompt = _prompt(row, where)
        chosen = _completion(row["chosen"], f"{where}.chosen")
        rejected = _completion(row["rejected"], f"{where}.rejected")
        if chosen == rejected:
            raise TrainingInputError(f"{where} has identical chosen and rejected completions")
        out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "tools": _tools(row, where)})
    if not out:
        raise TrainingInputError("no preference pairs to train on")
    return out


def prompt_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows → ``{"prompt": [messages], **other keys}`` (for grpo and eval). A trailing assistant turn is dropped."""
    out = []
    for index, raw in enumerate(rows):
        row = _row(raw, index)
        where = f"row {index}"
        prompt = _prompt(row, where)
        if prompt[-1]["role"] == "assistant":
            prompt = prompt[:-1]
        if not prompt:
            raise TrainingInputError(f"{where} has no prompt before its assistant reply")
        extra = {k: v for k, v in row.items() if k not in {"prompt", "messages", "completion", "chosen", "rejected"}}
        # Prompts are sent to a model as chat messages: the tool keys only where they are set.
        prompt = [{k: v for k, v in m.items() if v is not None or k in ("role", "content")} for m in prompt]
        out.append({"prompt": prompt, **extra})
    if not out:
        raise TrainingInputError("no prompts to train on")
    return out
