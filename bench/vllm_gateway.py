"""Our gateway in front of vLLM against vLLM itself: the same chat load (default 32 concurrent requests) sent
straight to a vLLM server and through our server serving the same model folder with
ADAPTIVE_INFERENCE_BACKEND=vllm. Printed: requests/s, completion tokens/s and latency of each path, and the
gateway's share of vLLM's throughput (issue 20's target: >= 90%). Meant for a GPU machine:

    python bench/vllm_gateway.py --model-folder DIR [--vllm-command vllm] [--vllm-args "..."] [--requests 512]
        [--concurrency 32] [--max-tokens 64] [--start-timeout 900]

1. vLLM alone: ``<command> serve DIR --host 127.0.0.1 --port P --served-model-name bench`` (with a known API
   key), warmed up, measured, stopped: one GPU holds one such server at a time.
2. Our server (``adaptive-engine serve``, its own process) with the folder registered, attached and deployed:
   it starts its own vLLM with the same command, and the load goes through /api/v1/chat/completions with the
   completions stored, as production traffic would.

Both paths get the same prompts, greedy, ``max_tokens`` each. Without a GPU, ``--vllm-command "python
tests/inference/fake_vllm.py"`` runs the same path against the test suite's stand-in (its figures then say
what the gateway costs in front of a server that answers at once, not what vLLM does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from server_process import ServerProcess, free_port, wait_until_healthy  # noqa: E402

from adaptive_engine import Adaptive  # noqa: E402

KEY = "bench-admin-key"
PROMPTS = [
    "Explain in two sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List three uses of a paperclip.",
    "What is the capital of France, and why is it famous?",
    "Describe a sunrise to someone who has never seen one.",
    "Give one tip for writing clear code.",
    "Summarize the plot of a heist movie in three sentences.",
    "Why do cats purr?",
]


@dataclass
class Figures:
    requests: int
    errors: int
    seconds: float
    completion_tokens: int
    latencies: list[float]

    @property
    def requests_per_s(self) -> float:
        return (self.requests - self.errors) / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds

    def latency(self, q: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(
    url: str, headers: dict[str, str], model: str, requests: int, concurrency: int, max_tokens: int
) -> Figures:
    """``requests`` chat calls, ``concurrency`` at a time; an answer counts once its whole body arrived."""
    todo = iter(range(requests))
    errors = 0
    tokens = 0
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors, tokens
        for i in todo:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            began = time.perf_counter()
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    answer = await response.json(content_type=None)
                    if response.status != 200:
                        errors += 1
                        continue
            except aiohttp.ClientError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - began)
            tokens += int((answer.get("usage") or {}).get("completion_tokens") or 0)

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    return Figures(requests, errors, seconds, tokens, latencies)


def measure(url: str, headers: dict[str, str], model: str, options: argparse.Namespace) -> Figures:
    asyncio.run(load(url, headers, model, min(16, options.requests), min(8, options.concurrency), options.max_tokens))
    return asyncio.run(load(url, headers, model, options.requests, options.concurrency, options.max_tokens))


def vllm_alone(options: argparse.Namespace) -> Figures:
    port = free_port()
    api_key = secrets.token_hex(16)
    command = [
        *shlex.split(options.vllm_command),
        "serve",
        str(options.model_folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "bench",
        *shlex.split(options.vllm_args),
    ]
    log = open(Path(tempfile.mkdtemp(prefix="ae-vllm-")) / "vllm.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command,
        env={**os.environ, "VLLM_API_KEY": api_key},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if not wait_until_healthy(f"http://127.0.0.1:{port}/health", process, options.start_timeout, 1.0):
            raise RuntimeError(f"vLLM did not start; its output is in {log.name}")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return measure(url, {"Authorization": f"Bearer {api_key}"}, "bench", options)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def through_gateway(options: argparse.Namespace) -> Figures:
    env = {
        "ADAPTIVE_INFERENCE_BACKEND": "vllm",
        "ADAPTIVE_VLLM_COMMAND": options.vllm_command,
        "ADAPTIVE_VLLM_ARGS": options.vllm_args,
        "ADAPTIVE_BUNDLED_MODELS": "false",
    }
    data_dir = Path(tempfile.mkdtemp(prefix="ae-bench-"))
    with ServerProcess(data_dir, KEY, env=env, log_path=data_dir / "server.log", timeout_s=300) as server:
        with Adaptive(server.url, api_key=KEY, timeout_secs=120) as client:
            client.use_cases.create(key="bench")
            model = client.models.add_local(str(options.model_folder), name="bench model", key="bench-model")
            # Polled (vLLM may take minutes to load); a failed start raises with vLLM's last lines.
            client.models.attach(
                model.key, wait=True, make_default=True, use_case="bench", on_progress=lambda _: None, poll_interval=2
            )
        return measure(f"{server.url}/api/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, "bench", options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-folder", type=Path, required=True, help="a model folder vLLM serves")
    parser.add_argument("--vllm-command", default="vllm")
    parser.add_argument("--vllm-args", default="", help="more `vllm serve` arguments, for both paths")
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--start-timeout", type=float, default=900.0, help="seconds for vLLM to get ready")
    options = parser.parse_args()
    options.model_folder = options.model_folder.resolve()
    print(
        f"vLLM behind the gateway: {options.requests} chat requests, {options.concurrency} concurrent, max_tokens "
        f"{options.max_tokens}, greedy; command {options.vllm_command!r}; load average {os.getloadavg()[0]:.1f}"
    )
    rows = [("vLLM alone", vllm_alone(options)), ("through our gateway", through_gateway(options))]
    print(f"{'path':<22} {'requests/s':>11} {'tokens/s':>10} {'p50 s':>8} {'p99 s':>8} {'errors':>7}")
    for label, f in rows:
        print(
            f"{label:<22} {f.requests_per_s:>11.1f} {f.tokens_per_s:>10.1f} {f.latency(0.5):>8.3f}"
            f" {f.latency(0.99):>8.3f} {f.errors:>7}"
        )
    alone, ours = rows[0][1], rows[1][1]
    token_share = ours.tokens_per_s / alone.tokens_per_s if alone.tokens_per_s else float("nan")
    added = statistics.median(ours.latencies or [0]) - statistics.median(alone.latencies or [0])
    print(
        f"gateway / vLLM: {ours.requests_per_s / alone.requests_per_s:.1%} of the requests/s, {token_share:.1%} of"
        f" the tokens/s (target >= 90%); median latency {added:+.3f} s"
    )


if __name__ == "__main__":
    main()
