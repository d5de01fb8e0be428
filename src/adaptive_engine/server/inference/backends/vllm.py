"""vLLM for GPU serving: one ``vllm serve`` process per deployed local model, spoken to over its
OpenAI-compatible API through :class:`ExternalBackend` (the same client code as external providers).

Chosen by configuration (``ADAPTIVE_INFERENCE_BACKEND=vllm``): the inference manager then builds this
backend instead of the in-process transformers one for every local model. ``load`` starts
``<command> serve <model folder> --host 127.0.0.1 --port <free port> --served-model-name <key>`` (a PEFT
adapter: its base folder with ``--enable-lora --lora-modules <key>=<adapter>``; an embedding model:
``--runner pooling``), with a random API key in ``VLLM_API_KEY``, and waits for ``/health``. A process that
exits, at start or later, is reported with the last lines of its output; ``unload`` stops it (SIGTERM to
its process group, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adaptive_engine.server.processes import stop_process_group

from .base import (
    Backend,
    BackendLoadError,
    BackendNotReady,
    Capability,
    EmbeddingResult,
    GenerationRequest,
    GenerationResult,
    Health,
    StreamEvent,
)
from .external import ExternalBackend, ExternalModelConfig, HttpPool
from .local import LocalModelSpec, convert_gguf

log = logging.getLogger("adaptive_engine.inference.vllm")

NOT_INSTALLED = "vLLM is not installed: pip install 'adaptive-engine[vllm]' on a GPU machine"
OUTPUT_LINES = 40
STOP_GRACE_S = 10.0


@dataclass
class VllmSpec:
    """What to serve and how to start vLLM."""

    model: LocalModelSpec
    name: str  # the registry key: vLLM's --served-model-name (or the LoRA module's name)
    kind: str = "chat"  # "chat" or "embedding"
    command: list[str] = field(default_factory=lambda: ["vllm"])
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 600.0
    request_timeout_s: float = 600.0
    # The model's compute config (tp, max_seq_len) becomes vLLM's parallelism and context length.
    compute: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lora_rank(adapter: Path) -> int | None:
    import json

    try:
        rank = int(json.loads((adapter / "adapter_config.json").read_text()).get("r") or 0)
    except (OSError, ValueError):
        return None
    if rank <= 0:
        return None
    supported = 8
    while supported < rank:
        supported *= 2
    return supported


def serve_arguments(spec: VllmSpec, folder: Path, port: int) -> list[str]:
    """The ``vllm serve`` command line for ``spec`` (``folder``: the weights to serve)."""
    args = [*spec.command, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    adapter = Path(spec.model.path) if spec.model.base is not None else None
    if adapter is not None:
        args += [
            "--served-model-name",
            f"{spec.name}--base",
            "--enable-lora",
            "--lora-modules",
            f"{spec.name}={adapter}",
        ]
        rank = _lora_rank(adapter)
        if rank is not None and rank > 16:
            args += ["--max-lora-rank", str(rank)]
    else:
        args += ["--served-model-name", spec.name]
    if spec.kind == "embedding":
        args += ["--runner", "pooling"]
    if spec.compute.get("tp"):
        args += ["--tensor-parallel-size", str(int(spec.compute["tp"]))]
    if spec.compute.get("max_seq_len"):
        args += ["--max-model-len", str(int(spec.compute["max_seq_len"]))]
    return args + list(spec.extra_args)


def _child_env(api_key: str) -> dict[str, str]:
    # The server's own settings (admin key, database URL) stay out of the child's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTIVE_")}
    env["VLLM_API_KEY"] = api_key
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _death_signal() -> Callable[[], None] | None:
    """Linux: a function for the child (between fork and exec) that makes it get SIGTERM when the server
    dies without unloading it. libc is resolved here, in the parent, so the child loads nothing."""
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def child() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return child


class VllmBackend(Backend):
    def __init__(
        self,
        spec: VllmSpec,
        client: HttpPool | None = None,
        on_exit: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.capabilities = frozenset({Capability.EMBEDDING if spec.kind == "embedding" else Capability.CHAT})
        self._client = client
        # Called (with the reason) when the process ends on its own after it was ready.
        self._on_exit = on_exit
        self._process: asyncio.subprocess.Process | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self._reader: asyncio.Task[None] | None = None
        self._proxy: ExternalBackend | None = None
        self._stopping = False
        self.port: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def output_tail(self) -> str:
        return "\n".join(self._output)

    # -- lifecycle

    async def load(self) -> None:
        if self._proxy is not None:
            return
        executable = shutil.which(self.spec.command[0]) if self.spec.command else None
        if executable is None:
            raise BackendLoadError(f"{NOT_INSTALLED} (command '{' '.join(self.spec.command)}' not found)")
        folder = await asyncio.to_thread(self._weights_folder)
        self.port = free_port()
        api_key = secrets.token_urlsafe(24)
        argv = serve_arguments(self.spec, folder, self.port)
        argv[0] = executable
        log.info("starting vLLM for %s: %s", self.spec.name, " ".join(argv))
        self._stopping = False
        self._output.clear()
        self._process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_child_env(api_key),
            start_new_session=True,
            preexec_fn=_death_signal(),
        )
        self._reader = asyncio.create_task(self._read_output(self._process), name=f"vllm-output-{self.spec.name}")
        try:
            await self._wait_healthy()
        except BaseException:
            await self._stop_process()
            raise
        served = self.spec.name
        self._proxy = ExternalBackend(
            ExternalModelConfig(
                provider="openai",
                external_model_id=served,
                api_key=api_key,
                endpoint=f"http://127.0.0.1:{self.port}/v1",
                timeout=self.spec.request_timeout_s,
            ),
            self._client,
        )
        self._proxy.provider_name = "vLLM"
        await self._proxy.load()
        log.info("vLLM serves %s on port %s (pid %s)", served, self.port, self._process.pid)

    def _weights_folder(self) -> Path:
        spec = self.spec.model
        weights = spec.base if spec.base is not None else spec
        folder = convert_gguf(weights) if weights.gguf_file is not None else Path(weights.path)
        if not folder.is_dir():
            raise BackendLoadError(f"model folder not found: {folder}")
        return folder

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._output.append(line)
                log.debug("vllm[%s] %s", self.spec.name, line)
        code = await process.wait()
        if not self._stopping and self._proxy is not None and self._on_exit is not None:
            self._on_exit(self._exit_message(code))

    def _exit_message(self, code: int | None) -> str:
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        tail = self.output_tail()
        return f"the vLLM server of model '{self.spec.name}' {how}" + (f"; its last output:\n{tail}" if tail else "")

    async def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.spec.startup_timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                if self._process.returncode is not None:
                    if self._reader is not None:  # the rest of its output, for the message
                        await asyncio.wait([self._reader], timeout=2.0)
                    code = self._process.returncode
                    tail = self.output_tail()
                    raise BackendLoadError(
                        f"vLLM exited with code {code} before it was ready"
                        + (f"; its last output:\n{tail}" if tail else "")
                    )
                try:
                    if (await http.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    tail = self.output_tail()
                    raise BackendLoadError(
                        f"vLLM did not answer /health within {self.spec.startup_timeout_s:g} s"
                        + (f"; its last output:\n{tail}" if tail else "")
                    )
                await asyncio.sleep(0.25)

    async def unload(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            await proxy.unload()
        await self._stop_process()

    async def _stop_process(self) -> None:
        self._stopping = True
        if self._process is not None:
            # Whatever the leader started (vLLM's engine workers) is in its group.
            await stop_process_group(self._process, STOP_GRACE_S)
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5.0)
            if not self._reader.done():
                self._reader.cancel()
            self._reader = None

    async def health(self) -> Health:
        if self._process is None or self._proxy is None:
            return Health(ok=False, detail="not loaded")
        if self._process.returncode is not None:
            return Health(ok=False, detail=self._exit_message(self._process.returncode))
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                status = (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code
        except httpx.TransportError as exc:
            return Health(ok=False, detail=f"vLLM does not answer: {exc}")
        return Health(ok=status == 200, detail="" if status == 200 else f"/health answered {status}")

    # -- calls: the OpenAI-compatible client of external providers

    def _serving(self) -> ExternalBackend:
        if self._process is not None and self._process.returncode is not None:
            raise BackendNotReady(self._exit_message(self._process.returncode))
        if self._proxy is None:
            raise BackendNotReady(f"the vLLM server of model '{self.spec.name}' is not running")
        return self._proxy

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        result = await self._serving().generate(request)
        result.model = self.spec.name
        return result

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        async for event in self._serving().stream(request):
            yield event

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        return await self._serving().embed(texts)
