"""Custom graders: a Python function ``grade(messages, completion, metadata)`` supplied by the user.

The code is checked when the grader is created (it must parse and define ``grade`` with three
parameters) and runs only in a separate Python process in the sandbox (``server/sandbox.py``: no
network, nothing of the server's files or processes visible, ``-I``, an allow-listed environment), under
memory and file-size limits and a time limit per sample and for the whole batch. It never runs in the
server process.
"""

from __future__ import annotations

import ast
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.sandbox import GRADER_LIMITS, Sandbox, user_env

MAX_CODE_BYTES = 100_000
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
RUNNER_SOURCE = (Path(__file__).parent / "sandbox_runner.py").read_text()


def validate_code(code: str | None) -> str:
    if code is None or not code.strip():
        raise InvalidInput("a custom grader's code must not be empty")
    if len(code.encode()) > MAX_CODE_BYTES:
        raise InvalidInput(f"a custom grader's code must be at most {MAX_CODE_BYTES} bytes")
    try:
        tree = ast.parse(code, filename="<grader>")
    except SyntaxError as exc:
        raise InvalidInput(f"the custom grader's code does not parse: line {exc.lineno}: {exc.msg}") from exc
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "grade"]
    if not functions:
        raise InvalidInput(
            "the custom grader's code must define a top-level function grade(messages, completion, metadata)"
        )
    fn = functions[-1]
    if isinstance(fn, ast.AsyncFunctionDef):
        raise InvalidInput("grade() must be a plain function, not async")
    args = fn.args
    positional = len(args.posonlyargs) + len(args.args)
    if positional < 3 and args.vararg is None:
        raise InvalidInput("grade() must take three parameters: messages, completion, metadata")
    return code


@dataclass
class CustomResult:
    score: float | None = None
    reasoning: str | None = None
    error: str | None = None


async def run_custom(
    code: str, samples: list[dict[str, Any]], sandbox: Sandbox, *, per_sample_s: float = 5.0, memory_mb: int = 512
) -> list[CustomResult]:
    """Grades ``samples`` ({messages, completion, metadata}) with ``code`` in a sandboxed subprocess. A
    failure of the code on one sample is that sample's error; a failure of the process is every sample's
    error; SandboxUnavailable where user code cannot run here."""
    if not samples:
        return []
    payload = json.dumps(
        {"code": code, "samples": samples, "per_sample_s": per_sample_s, "memory_mb": memory_mb}
    ).encode()
    budget = per_sample_s * (len(samples) + 1) + 10.0
    with tempfile.TemporaryDirectory(prefix="grader-") as workdir:
        # An empty working folder, read-only; no network.
        launch = await sandbox.launch(
            "running a custom grader",
            [sys.executable, "-I", "-c", RUNNER_SOURCE],
            cwd=Path(workdir),
            env=user_env({"PYTHONIOENCODING": "utf-8"}),
            limits=GRADER_LIMITS,
            read_only=[Path(workdir)],
        )
        process = await asyncio.create_subprocess_exec(
            *launch.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,
        )
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None and stdout is not None  # both are pipes (above)
        try:
            stdin.write(payload)
            await stdin.drain()
            stdin.close()
            out = await asyncio.wait_for(_read_limited(stdout, MAX_OUTPUT_BYTES), timeout=budget)
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            return [CustomResult(error=f"the custom grader ran longer than {budget:g}s")] * len(samples)
        except _TooLarge:
            return [CustomResult(error=f"the custom grader wrote more than {MAX_OUTPUT_BYTES} bytes")] * len(samples)
        except (BrokenPipeError, ConnectionResetError):
            out = b""
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    try:
        answer = json.loads(out)
    except ValueError:
        why = f"exit status {process.returncode}" if process.returncode else "no answer"
        return [CustomResult(error=f"the custom grader process failed ({why})")] * len(samples)
    if "fatal" in answer:
        return [CustomResult(error=f"the custom grader's code failed to load: {answer['fatal']}"[:2000])] * len(samples)
    results = answer.get("results") or []
    if len(results) != len(samples):
        return [CustomResult(error="the custom grader process answered the wrong number of results")] * len(samples)
    return [CustomResult(score=r.get("score"), reasoning=r.get("reasoning"), error=r.get("error")) for r in results]


class _TooLarge(Exception):
    pass


async def _read_limited(stream: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
