"""Every method and parameter of the API reference exists on both SDK clients, and what the reference makes
optional is optional in ours (the end-to-end behaviour of each is tested in its domain's tests)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from adaptive_engine import Adaptive, AsyncAdaptive

SIGNATURES = Path(__file__).with_name("sdk_reference_signatures.txt")
LINE = re.compile(r"^([a-z_.]+)\.([a-z_]+)\((.*)\)$")
# Split on commas outside brackets: "models: List[str], traffic_split: float = 1.0".
COMMA = re.compile(r",\s*(?![^\[]*\])")


def reference() -> list[tuple[str, str, dict[str, bool]]]:
    """(resource path, method, {parameter: has a default})."""
    methods = []
    for line in SIGNATURES.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"unreadable reference line: {line}"
        resource, method, params = match.groups()
        parsed = {}
        for part in COMMA.split(params):
            name = part.split(":")[0].split("=")[0].strip()
            if name and name != "*" and not name.startswith("*"):
                parsed[name] = "=" in part
        methods.append((resource, method, parsed))
    return methods


METHODS = reference()


def test_reference_is_read_whole() -> None:
    assert len(METHODS) >= 70
    assert {m[0] for m in METHODS} >= {"models", "chat", "interactions", "feedback", "jobs", "users", "integrations"}


@pytest.mark.parametrize("client_class", [Adaptive, AsyncAdaptive])
def test_every_reference_method_and_parameter_exists(client_class: type) -> None:
    client = client_class("http://127.0.0.1:9", api_key="unused")
    problems = []
    for resource, method, params in METHODS:
        target = client
        try:
            for part in resource.split("."):
                target = getattr(target, part)
            function = getattr(target, method)
        except AttributeError:
            problems.append(f"{resource}.{method} is missing")
            continue
        signature = inspect.signature(function)
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        for name, optional in params.items():
            ours = signature.parameters.get(name)
            if ours is None:
                if not accepts_any:
                    problems.append(f"{resource}.{method} has no parameter '{name}'")
            elif optional and ours.default is inspect.Parameter.empty:
                problems.append(f"{resource}.{method}: '{name}' is optional in the reference, required here")
    assert problems == []
