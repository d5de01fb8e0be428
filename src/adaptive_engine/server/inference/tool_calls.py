"""Tool calls on local models whose chat template renders tools.

The template shows the model the tools; what the model answers becomes a call in one of two ways:
- ``tool_choice`` "required" or a named function: the answer is constrained (llguidance, from a JSON schema)
  to ``{"name": ..., "arguments": {...}}`` with the arguments following the tool's ``parameters``;
- "auto": the model writes freely; an answer that is one such object (bare, or inside ``<tool_call>`` tags as
  Hermes-style templates ask) naming a tool of the request is a call, anything else is text.
One call per answer, which both values of ``parallel_tool_calls`` allow.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

_TAGGED = re.compile(r"^\s*<tool_call>\s*(.*?)\s*(?:</tool_call>)?\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ToolUse:
    """What a chat request asks of a local model about tools (the request's ``tools`` and ``tool_choice``)."""

    tools: list[dict[str, Any]]
    choice: str | dict[str, Any] = "auto"

    @property
    def forced(self) -> bool:
        return self.choice == "required" or isinstance(self.choice, dict)

    @property
    def parses_calls(self) -> bool:
        return self.choice != "none"

    def _functions(self) -> list[dict[str, Any]]:
        functions = [t["function"] for t in self.tools if t.get("type") == "function"]
        if isinstance(self.choice, dict):
            wanted = self.choice["function"]["name"]
            functions = [f for f in functions if f["name"] == wanted]
        return functions

    def call_schema(self) -> dict[str, Any]:
        """The JSON schema of a call when one is forced."""
        options = [
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "arguments"],
                "properties": {"name": {"const": f["name"]}, "arguments": f.get("parameters") or {"type": "object"}},
            }
            for f in self._functions()
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def call_in(self, text: str) -> dict[str, Any] | None:
        """The call ``text`` makes, in OpenAI's ``tool_calls`` item shape; None when it is no call."""
        tagged = _TAGGED.match(text)
        body = tagged.group(1) if tagged else text.strip()
        if not body.startswith("{"):
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        name = value.get("name")
        arguments = value.get("arguments", value.get("parameters"))
        if name not in {f["name"] for f in self._functions()} or not isinstance(arguments, dict):
            return None
        return {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages as chat templates take them: a call's arguments as an object, not a JSON string."""
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = {**message, "tool_calls": [_with_object_arguments(c) for c in calls]}
        out.append(message)
    return out


def _with_object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    try:
        function["arguments"] = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        pass  # the template gets what the caller sent
    return {**call, "function": function}
