"""JSONL dataset rows: validation and kind detection.

Each line is a JSON object with a prompt, either ``"messages"`` (a list of ``{"role", "content"}``) or
``"prompt"`` (plain text), and optionally:

* ``"completion"`` (text): PROMPT_COMPLETION;
* ``"completion"`` and ``"feedback"`` (``{metric_key: number | bool}``): PROMPT_COMPLETION_FEEDBACK;
* ``"chosen"`` and ``"rejected"`` (texts): PREFERENCE;
* nothing more: PROMPT.

``"labels"`` (``{str: str}``), ``"metadata"`` (object), ``"id"`` and ``"tools"`` (the request's tool definitions,
for conversations with tool calls) are allowed on every row; an assistant message may carry ``"tool_calls"``.
Every row of a file has the same kind; the first bad line rejects the whole file.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ROLES = frozenset({"system", "user", "assistant", "tool"})
COMMON_FIELDS = frozenset({"labels", "metadata", "id", "tools"})
KIND_FIELDS = {
    "PROMPT": frozenset({"messages", "prompt"}),
    "PROMPT_COMPLETION": frozenset({"messages", "prompt", "completion"}),
    "PROMPT_COMPLETION_FEEDBACK": frozenset({"messages", "prompt", "completion", "feedback"}),
    "PREFERENCE": frozenset({"messages", "prompt", "chosen", "rejected"}),
}


class RowError(ValueError):
    """A line that is not a valid row; the message names the line and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Summary:
    kind: str | None = None
    records: int = 0
    feedback_keys: Counter[str] = field(default_factory=Counter)


def _text(row: dict[str, Any], name: str) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"'{name}' must not be empty")
    return value


def _check_prompt(row: dict[str, Any]) -> None:
    has_messages, has_prompt = "messages" in row, "prompt" in row
    if has_messages and has_prompt:
        raise ValueError("give either 'messages' or 'prompt', not both")
    if has_prompt:
        _text(row, "prompt")
        return
    if not has_messages:
        raise ValueError("a row needs 'messages' (a list of {role, content}) or 'prompt' (text)")
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}, not {role!r}")
        calls = message.get("tool_calls")
        if calls is not None:  # a tool call, as the gateway logs it: its content may be null
            if role != "assistant" or not isinstance(calls, list) or not calls:
                raise ValueError(f"messages[{i}].tool_calls must be a non-empty list on an assistant message")
            if message.get("content") is None:
                continue
        if not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}].content must be a string")


def _check_feedback(row: dict[str, Any]) -> dict[str, float]:
    feedback = row["feedback"]
    if not isinstance(feedback, dict) or not feedback:
        raise ValueError("'feedback' must be a non-empty object {metric_key: value}")
    for key, value in feedback.items():
        if not key:
            raise ValueError("feedback keys must not be empty")
        if isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"feedback '{key}' must be a finite number or a boolean, not {value!r}")
    return feedback


def row_kind(row: Any) -> str:
    """The kind of one parsed row, or ValueError with the reason."""
    if not isinstance(row, dict):
        raise ValueError(f"a row must be a JSON object, not {type(row).__name__}")
    _check_prompt(row)
    if "chosen" in row or "rejected" in row:
        if "chosen" not in row or "rejected" not in row:
            raise ValueError("a preference row needs both 'chosen' and 'rejected'")
        _text(row, "chosen")
        _text(row, "rejected")
        kind = "PREFERENCE"
    elif "completion" in row:
        if not isinstance(row["completion"], str):
            raise ValueError("'completion' must be a string")
        kind = "PROMPT_COMPLETION"
        if "feedback" in row:
            _check_feedback(row)
            kind = "PROMPT_COMPLETION_FEEDBACK"
    elif "feedback" in row:
        raise ValueError("'feedback' needs a 'completion' to apply to")
    else:
        kind = "PROMPT"
    unknown = set(row) - KIND_FIELDS[kind] - COMMON_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) for a {kind} row: {', '.join(sorted(unknown))}")
    labels = row.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())):
        raise ValueError("'labels' must be an object of strings")
    if "metadata" in row and not isinstance(row["metadata"], dict):
        raise ValueError("'metadata' must be an object")
    tools = row.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise ValueError("'tools' must be a list of tool objects")
    return kind


class Validator:
    """Feed lines in order; raises RowError at the first bad one."""

    def __init__(self) -> None:
        self.summary = Summary()
        self.line = 0
        self._first_kind_line = 0

    def feed(self, raw: bytes | str) -> None:
        self.line += 1
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RowError(self.line, "not UTF-8 text") from None
        if not raw.strip():
            return
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RowError(self.line, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        try:
            kind = row_kind(row)
        except ValueError as exc:
            raise RowError(self.line, str(exc)) from None
        summary = self.summary
        if summary.kind is None:
            summary.kind, self._first_kind_line = kind, self.line
        elif kind != summary.kind:
            raise RowError(
                self.line, f"row is {kind} but the file's rows are {summary.kind} (from line {self._first_kind_line})"
            )
        summary.records += 1
        if kind == "PROMPT_COMPLETION_FEEDBACK":
            summary.feedback_keys.update(row["feedback"].keys())

    def finish(self) -> Summary:
        if self.summary.records == 0:
            raise RowError(max(self.line, 1), "the file has no rows")
        return self.summary


def validate_lines(lines: Iterable[bytes | str]) -> Summary:
    validator = Validator()
    for line in lines:
        validator.feed(line)
    return validator.finish()
