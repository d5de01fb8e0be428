"""Turning dataset rows into the conversational records TRL trains on, with errors that name the row.

Accepted shapes (``prompt`` is a string or a list of chat messages; a completion is a string or one
assistant message):
- sft:  ``{"messages": [..., {"role": "assistant", ...}]}`` or ``{"prompt": ..., "completion": ...}``
- dpo:  ``{"prompt": ..., "chosen": ..., "rejected": ...}`` (or ``messages`` as the prompt)
- grpo: ``{"prompt": ...}`` or ``{"messages": [...]}``; every other key is passed to the reward function
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import TrainingInputError

ROLES = {"system", "user", "assistant", "tool"}
Message = dict[str, str]


def _messages(value: Any, where: str) -> list[Message]:
    if isinstance(value, str):
        if not value.strip():
            raise TrainingInputError(f"{where} is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise TrainingInputError(f"{where} must be a string or a non-empty list of messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise TrainingInputError(f"{where}[{i}] must be an object with role and content")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise TrainingInputError(f"{where}[{i}] has unknown role {role!r}")
        if not isinstance(content, str):
            raise TrainingInputError(f"{where}[{i}].content must be a string")
        out.append({"role": role, "content": content})
    return out


def _completion(value: Any, where: str) -> list[Message]:
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
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
        if not completion[0]["content"].strip():
            raise TrainingInputError(f"{where} has an empty completion")
        out.append({"prompt": prompt, "completion": completion})
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
        if chosen[0]["content"] == rejected[0]["content"]:
            raise TrainingInputError(f"{where} has identical chosen and rejected completions")
        out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
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
        out.append({"prompt": prompt, **extra})
    if not out:
        raise TrainingInputError("no prompts to train on")
    return out
