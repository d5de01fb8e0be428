"""What a caller's type checker sees of the SDK: each method with its own parameters and a precise return type,
the result itself on Adaptive and an awaitable of it on AsyncAdaptive (mypy's reveal_type on a snippet)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
from adaptive_engine import Adaptive, AsyncAdaptive


async def caller() -> None:
    sync = Adaptive("http://127.0.0.1:8000", api_key="key")
    reveal_type(sync.use_cases.create("support"))
    reveal_type(sync.models.list())
    reveal_type(sync.models.attach("smollm2", wait=True))
    reveal_type(sync.jobs.wait("job-id", timeout=60))
    reveal_type(sync.jobs.logs("job-id"))
    reveal_type(sync.feedback.register_key("csat", kind="scalar"))
    reveal_type(sync.interactions.list())
    reveal_type(sync.use_cases.get)
    messages = [{"role": "user", "content": "Hello"}]
    reveal_type(sync.chat.create(messages, temperature=0, max_tokens=16))
    reveal_type(sync.chat.create(messages, stream=True))
    aclient = AsyncAdaptive("http://127.0.0.1:8000", api_key="key")
    reveal_type(aclient.use_cases.create("support"))
    reveal_type(await aclient.use_cases.create("support"))
    reveal_type(await aclient.models.list())
    reveal_type(await aclient.jobs.wait("job-id"))
    reveal_type(await aclient.chat.create(messages))
    reveal_type(await aclient.chat.create(messages, stream=True))
    reveal_type(sync.ab_tests.cancel("ab"))
    reveal_type(sync.recipes.parse_schema("source"))
    reveal_type(sync.recipes.generate_sample_input("recipe"))
    reveal_type(sync.graders.test_external_endpoint("http://127.0.0.1:9"))
    reveal_type(sync.graders.grade(grader_key="g", messages=[], completion="c"))
    reveal_type(sync.feedback.unlink("csat"))
    reveal_type(sync.compute_pools.resize_inference_partition("pool", 1))
    reveal_type(sync.datasets.create_from_filters("rows", "PROMPT", completion_ids=["c1"]))
    reveal_type(sync.models.delete("m"))
    reveal_type(sync.models.terminate("m"))
    reveal_type(sync.usage.remove_limits("user", "u"))
    reveal_type(sync.permissions.list())
    reveal_type(await aclient.models.delete("m"))
    sync.models.get(42)
    sync.jobs.wait("job-id", timeout_seconds=1)
    sync.chat.create(messages, temperature="hot")
"""

TYPES = "adaptive_engine.sdk.types"
EXPECTED = [
    f"{TYPES}.UseCase",
    f"list[{TYPES}.Model]",
    f"{TYPES}.ModelService",
    f"{TYPES}.Job",
    "str",
    f"{TYPES}.FeedbackKeyDetails",
    f"{TYPES}.InteractionPage | {TYPES}.InteractionGroupPage",
    f"def (use_case: str | None =) -> {TYPES}.UseCase",
    f"{TYPES}.ChatResponse",
    f"typing.Iterator[{TYPES}.ChatResponseChunk]",
    f"typing.Awaitable[{TYPES}.UseCase]",
    f"{TYPES}.UseCase",
    f"list[{TYPES}.Model]",
    f"{TYPES}.Job",
    f"{TYPES}.ChatResponse",
    f"typing.AsyncIterator[{TYPES}.ChatResponseChunk]",
    "str",
    "dict[str, Any]",
    "dict[str, Any]",
    f"{TYPES}.EndpointOnline | {TYPES}.EndpointOffline",
    f"{TYPES}.GradeResult",
    "str",
    f"list[{TYPES}.ResizeResult]",
    f"{TYPES}.Dataset",
    "str",
    "str",
    "bool",
    "list[str]",
    "str",
]


def test_sdk_methods_have_precise_types_for_callers(tmp_path: Path) -> None:
    snippet = tmp_path / "caller.py"
    snippet.write_text(SNIPPET)
    # Only the snippet's own findings are reported: the SDK is read (silently) from this tree's sources.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-executable",
            sys.executable,
            str(snippet),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT / "src"), "PYTHONPATH": str(ROOT / "src")},
    )
    revealed = re.findall(r'Revealed type is "(.*)"', done.stdout)
    assert revealed == EXPECTED, done.stdout
    errors = [line.split(": error: ")[1] for line in done.stdout.splitlines() if ": error: " in line]
    # The parameters are checked too: a wrong argument type and an unknown keyword are caller errors.
    assert len(errors) == 3, done.stdout
    assert 'Argument 1 has incompatible type "int"; expected "str"' in errors[0]
    assert 'Unexpected keyword argument "timeout_seconds"' in errors[1]
    assert 'No overload variant of "__call__" of "SyncChatCreate" matches' in errors[2]


def test_no_sdk_operation_returns_any() -> None:
    """Every operation of every resource of the client declares what it returns (a caller never gets Any)."""
    import typing
    from collections.abc import Generator

    from adaptive_engine import Adaptive
    from adaptive_engine.sdk._base import Operation, Resource

    client = Adaptive("http://127.0.0.1:9", api_key="key")
    resources = {name: value for name, value in vars(client).items() if isinstance(value, Resource)}
    assert len(resources) > 20
    untyped = []
    for name, resource in resources.items():
        for attribute, member in vars(type(resource)).items():
            operation = getattr(member, "_operation", member)  # chat.create wraps its Operation
            if attribute.startswith("_") or not isinstance(operation, Operation):
                continue
            method = operation._function.__wrapped__
            returns = typing.get_type_hints(method).get("return")
            if typing.get_origin(returns) is not Generator or typing.get_args(returns)[2] is typing.Any:
                untyped.append(f"{name}.{attribute}")
    client.close()
    assert untyped == []
