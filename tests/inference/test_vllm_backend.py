"""The vLLM backend with a real subprocess: ``tests/inference/fake_vllm.py`` takes ``vllm serve``'s command line
and serves vLLM's OpenAI-compatible routes (there is no GPU nor vLLM here). The backend on its own (start,
chat, stream, embeddings, LoRA adapters, stop, a missing command, a crash at start, a start that never gets
healthy, a process that dies while serving), then the server configured with ADAPTIVE_INFERENCE_BACKEND=vllm
on both databases: register a model folder, attach, chat, stream, terminate (the process is gone)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import APIError
from adaptive_engine.server.inference.backends.base import (
    BackendLoadError,
    BackendNotReady,
    ChatMessage,
    GenerationParams,
    GenerationRequest,
    TextDelta,
    Usage,
)
from adaptive_engine.server.inference.backends.local import LocalModelSpec
from adaptive_engine.server.inference.backends.vllm import VllmBackend, VllmSpec
from tests.models.support import tiny_llama_folder
from tests.support import LiveServer, make_settings, private_postgres_database, process_alive

FAKE = Path(__file__).with_name("fake_vllm.py")
COMMAND = [sys.executable, str(FAKE)]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama_folder(tmp_path_factory.mktemp("vllm-model"))


def chat(text: str, max_tokens: int | None = None) -> GenerationRequest:
    return GenerationRequest(messages=[ChatMessage("user", text)], params=GenerationParams(max_tokens=max_tokens))


def argv_of(backend: VllmBackend) -> list[str]:
    line = next(text for text in backend.output_tail().splitlines() if text.startswith("fake-vllm argv: "))
    return json.loads(line.removeprefix("fake-vllm argv: "))


async def test_serves_chat_stream_and_stops(model_folder: Path) -> None:
    backend = VllmBackend(
        VllmSpec(
            model=LocalModelSpec(path=str(model_folder)),
            name="tiny",
            command=COMMAND,
            extra_args=["--gpu-memory-utilization", "0.5"],
            compute={"max_seq_len": 256},
        )
    )
    await backend.load()
    pid = backend.pid
    try:
        assert pid is not None and process_alive(pid)
        argv = argv_of(backend)
        assert argv[:2] == ["serve", str(model_folder)] and argv[argv.index("--served-model-name") + 1] == "tiny"
        assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == str(backend.port)
        assert argv[argv.index("--max-model-len") + 1] == "256" and argv[-2:] == ["--gpu-memory-utilization", "0.5"]
        assert (await backend.health()).ok
        result = await backend.generate(chat("hello there"))
        assert result.choices[0].text == "[tiny] hello there" and result.choices[0].finish_reason == "stop"
        assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2, 3) and result.model == "tiny"
        cut = await backend.generate(chat("one two three four", max_tokens=2))
        assert cut.choices[0].text == "[tiny] one " and cut.choices[0].finish_reason == "length"
        events = [e async for e in backend.stream(chat("a b c"))]
        deltas = [e for e in events if isinstance(e, TextDelta)]
        assert "".join(d.text for d in deltas) == "[tiny] a b c" and deltas[-1].finish_reason == "stop"
        assert events[-1] == Usage(prompt_tokens=3, completion_tokens=4)
        plain = await backend.generate(GenerationRequest(prompt="raw text"))
        assert plain.choices[0].text == "[tiny] raw text"
        # A chat model's server refuses embeddings: vLLM's own message comes back.
        with pytest.raises(Exception, match="does not support Embeddings API"):
            await backend.embed(["x"])
    finally:
        await backend.unload()
    assert not process_alive(pid)
    with pytest.raises(BackendNotReady):
        await backend.generate(chat("after"))
    await backend.unload()  # idempotent


async def test_embedding_model_runs_as_pooling(model_folder: Path) -> None:
    backend = VllmBackend(
        VllmSpec(model=LocalModelSpec(path=str(model_folder)), name="emb", kind="embedding", command=COMMAND)
    )
    await backend.load()
    try:
        assert argv_of(backend)[-2:] == ["--runner", "pooling"]
        result = await backend.embed(["ab", "abc"])
        assert [v[0] for v in result.vectors] == [2.0, 3.0] and result.usage.prompt_tokens == 2
    finally:
        await backend.unload()


async def test_an_adapter_is_served_as_a_lora_module(model_folder: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 32, "base_model_name_or_path": str(model_folder)}))
    spec = VllmSpec(
        model=LocalModelSpec(path=str(adapter), base=LocalModelSpec(path=str(model_folder))),
        name="tuned",
        command=COMMAND,
    )
    backend = VllmBackend(spec)
    await backend.load()
    try:
        argv = argv_of(backend)
        assert argv[1] == str(model_folder) and "--enable-lora" in argv
        assert argv[argv.index("--lora-modules") + 1] == f"tuned={adapter}"
        assert argv[argv.index("--max-lora-rank") + 1] == "32"
        assert (await backend.generate(chat("hi"))).choices[0].text == "[tuned] hi"
    finally:
        await backend.unload()


async def test_a_missing_command_says_how_to_install(model_folder: Path) -> None:
    backend = VllmBackend(
        VllmSpec(model=LocalModelSpec(path=str(model_folder)), name="m", command=["no-such-vllm-cmd"])
    )
    with pytest.raises(
        BackendLoadError, match=r"vLLM is not installed: pip install 'adaptive-engine\[vllm\]' on a GPU machine"
    ):
        await backend.load()


async def test_a_crash_at_start_reports_its_output(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")  # a folder without config.json: vLLM exits at once
    backend = VllmBackend(VllmSpec(model=LocalModelSpec(path=str(tmp_path)), name="broken", command=COMMAND))
    started = time.monotonic()
    with pytest.raises(BackendLoadError) as raised:
        await backend.load()
    assert "vLLM exited with code 1 before it was ready" in raised.value.message
    assert "is not a model folder: no config.json" in raised.value.message
    assert time.monotonic() - started < 60


async def test_unknown_arguments_fail_like_vllm(model_folder: Path) -> None:
    backend = VllmBackend(
        VllmSpec(model=LocalModelSpec(path=str(model_folder)), name="m", command=COMMAND, extra_args=["--no-such-flag"])
    )
    with pytest.raises(BackendLoadError, match=r"exited with code 2(.|\n)*unrecognized arguments: --no-such-flag"):
        await backend.load()


async def test_a_start_that_never_gets_healthy_times_out_and_is_stopped(
    model_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_STARTUP_S", "3600")
    backend = VllmBackend(
        VllmSpec(model=LocalModelSpec(path=str(model_folder)), name="slow", command=COMMAND, startup_timeout_s=3)
    )
    with pytest.raises(BackendLoadError, match=r"did not answer /health within 3 s(.|\n)*fake-vllm argv"):
        await backend.load()
    assert backend.pid is not None and not process_alive(backend.pid)


async def test_a_process_that_dies_while_serving_is_reported(model_folder: Path) -> None:
    reasons: list[str] = []
    backend = VllmBackend(
        VllmSpec(model=LocalModelSpec(path=str(model_folder)), name="dies", command=COMMAND), on_exit=reasons.append
    )
    await backend.load()
    os.kill(backend.pid, signal.SIGKILL)
    for _ in range(100):
        if reasons:
            break
        await asyncio.sleep(0.05)
    assert reasons and "the vLLM server of model 'dies' was killed by signal 9" in reasons[0]
    with pytest.raises(BackendNotReady, match="was killed by signal 9"):
        await backend.generate(chat("hi"))
    assert not (await backend.health()).ok
    await backend.unload()


# --------------------------------------------------------------------------- through the server


@contextmanager
def vllm_server(tmp_path: Path, database: str | None, **overrides: object) -> Iterator[LiveServer]:
    def run(url: str | None) -> Iterator[LiveServer]:
        values = {"inference_backend": "vllm", "vllm_command": f"{sys.executable} {FAKE}", **overrides}
        settings = make_settings(tmp_path / "data", url, **values)
        with LiveServer(settings) as live:
            yield live

    if database is None:
        yield from run(None)
    else:
        with private_postgres_database() as url:
            yield from run(url)


@pytest.mark.postgres
def test_server_serves_local_models_through_vllm(database: str | None, tmp_path: Path, model_folder: Path) -> None:
    with vllm_server(tmp_path, database) as live, Adaptive(live.base_url, api_key=live.api_key) as client:
        client.use_cases.create(key="gpu")
        client.set_default_use_case("gpu")
        model = client.models.add_local(str(model_folder), name="Tiny on vLLM", key="tiny-vllm")
        client.models.attach(model.key, wait=True, make_default=True)
        backend = live.app.state.inference.loaded_backends()[uuid.UUID(model.id)]
        assert isinstance(backend, VllmBackend) and process_alive(backend.pid)
        answer = client.chat.create(messages=[{"role": "user", "content": "hello vllm"}])
        assert answer.choices[0].message.content == "[tiny-vllm] hello vllm"
        chunks = list(
            client.chat.create(messages=[{"role": "user", "content": "x y"}], stream=True, stream_include_usage=True)
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "[tiny-vllm] x y"
        assert chunks[-1].usage.completion_tokens == 3
        pid = backend.pid
        client.models.terminate(model.key, force=True)
        deadline = time.monotonic() + 30
        while process_alive(pid):
            assert time.monotonic() < deadline, "the vLLM process outlived terminate"
            time.sleep(0.1)
        # Deployed again: a new process; the server's shutdown stops it too.
        client.models.attach(model.key, wait=True)
        again = live.app.state.inference.loaded_backends()[uuid.UUID(model.id)]
        assert again.pid != pid and process_alive(again.pid)
        last_pid = again.pid
    assert not process_alive(last_pid)


def test_server_marks_the_model_error_when_vllm_is_missing(tmp_path: Path, model_folder: Path) -> None:
    with (
        vllm_server(tmp_path, None, vllm_command="no-such-vllm-cmd") as live,
        Adaptive(live.base_url, api_key=live.api_key) as client,
    ):
        client.use_cases.create(key="nogpu")
        client.set_default_use_case("nogpu")
        client.models.add_local(str(model_folder), name="No vLLM", key="no-vllm")
        with pytest.raises(
            APIError, match=r"vLLM is not installed: pip install 'adaptive-engine\[vllm\]' on a GPU machine"
        ):
            client.models.attach("no-vllm", wait=True)
        model = client.models.get("no-vllm")
        assert model.online == "ERROR" and "vLLM is not installed" in model.error


def test_server_marks_the_model_error_when_vllm_dies(tmp_path: Path, model_folder: Path) -> None:
    with vllm_server(tmp_path, None) as live, Adaptive(live.base_url, api_key=live.api_key) as client:
        client.use_cases.create(key="dies")
        client.set_default_use_case("dies")
        model = client.models.add_local(str(model_folder), name="Dies", key="dies")
        client.models.attach(model.key, wait=True)
        backend = live.app.state.inference.loaded_backends()[uuid.UUID(model.id)]
        os.kill(backend.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while client.models.get(model.key).online != "ERROR":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "was killed by signal 9" in client.models.get(model.key).error
        with pytest.raises(APIError, match="not online"):
            client.chat.create(messages=[{"role": "user", "content": "hi"}])
        # Deploying again starts a new process.
        client.models.attach(model.key, wait=True)
        assert (
            client.chat.create(messages=[{"role": "user", "content": "back"}]).choices[0].message.content
            == "[dies] back"
        )
