"""Latency our server adds in front of an external model, and the requests/s one server process serves.

A fast fake OpenAI-compatible upstream runs on 127.0.0.1 (its own process). The same load is sent to it
directly and through our server (external model registered and attached, completions stored), at
concurrency 1 and 32. Printed: p50/p99 of each path, the added latency, and requests/s through one
server process. With --litellm, LiteLLM's proxy (installed in its own venv under build/) is measured
against the same upstream in the same run, and our ratio to it is printed.

    python bench/gateway_overhead.py [--requests 400] [--litellm] [--limits | --paired] [--redis URL]
    python bench/gateway_overhead.py --baseline ../main-checkout [--rounds 6]   # this checkout against another

Targets: p50 added <= 2 ms and p99 <= 5 ms at concurrency 1; >= 500 requests/s through one process; tools +
a JSON-schema response_format within 0.2 ms of plain chat. Last, two upstreams that fail every other call (a 503;
a 429 with Retry-After-Ms) show what a retried request costs: one backoff, or the wait asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from server_process import ServerProcess, free_port

REPO = Path(__file__).resolve().parents[1]
ADMIN_KEY = "bench-admin-key"
# LiteLLM's proxy refuses to start without a master key (any strong-looking one will do here).
LITELLM_KEY = "sk-" + "5e" * 32

UPSTREAM = r"""
import json, sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn

BODY = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "hello from upstream"}}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()

async def chat(request):
    await request.body()
    return Response(BODY, media_type="application/json")

calls = {"flaky": 0, "throttled": 0}

async def flaky(request):
    # Every other call fails with a 503: each request through a gateway that retries costs one backoff.
    await request.body()
    calls["flaky"] += 1
    if calls["flaky"] % 2:
        return Response(b'{"error": {"message": "overloaded"}}', status_code=503, media_type="application/json")
    return Response(BODY, media_type="application/json")

async def throttled(request):
    # Every other call is a 429 that says when to come back (50 ms).
    await request.body()
    calls["throttled"] += 1
    if calls["throttled"] % 2:
        return Response(b'{"error": {"message": "slow down"}}', status_code=429, media_type="application/json",
                        headers={"Retry-After-Ms": "50"})
    return Response(BODY, media_type="application/json")

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                        Route("/flaky/v1/chat/completions", flaky, methods=["POST"]),
                        Route("/throttled/v1/chat/completions", throttled, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def wait_http(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(
    url: str, headers: dict[str, str], body: dict, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """``requests`` POSTs from ``concurrency`` workers on keep-alive connections. The load generator is
    aiohttp: httpx's client saturates a core at a few hundred requests/s and would be what is measured."""
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as client:

        async def call() -> None:
            async with client.post(url, json=body) as response:
                await response.read()
                response.raise_for_status()

        await asyncio.gather(*(call() for _ in range(min(concurrency, requests))))  # warm the connections

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await call()
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, requests / elapsed


async def paired(
    url: str, a: tuple[dict[str, str], dict], b: tuple[dict[str, str], dict], requests: int
) -> tuple[list[float], list[float]]:
    """``requests`` pairs of POSTs at concurrency 1, A then B then A ..., each on its own keep-alive connection:
    whatever else the machine does falls on both alike, so their difference is the cost of what differs."""
    timings: tuple[list[float], list[float]] = ([], [])
    clients = [
        aiohttp.ClientSession(headers=h, connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(60))
        for h, _ in (a, b)
    ]
    try:
        for i in range(requests * 2 + 20):
            side = i % 2
            start = time.perf_counter()
            async with clients[side].post(url, json=(a, b)[side][1]) as response:
                await response.read()
                response.raise_for_status()
            if i >= 20:  # the first ten pairs warm the connections and caches
                timings[side].append((time.perf_counter() - start) * 1000)
    finally:
        for client in clients:
            await client.close()
    return timings


def attach_fake(server: str, upstream: str) -> None:
    """Use case "bench" on ``server``, served by the fake upstream (external model "fake", its default)."""
    from adaptive_engine import Adaptive

    with Adaptive(server, api_key=ADMIN_KEY) as sdk:
        sdk.use_cases.create(key="bench")
        model = sdk.models.add_external(
            name="fake", key="fake", external_model_id="fake", api_key="sk-fake", provider="open_ai", endpoint=upstream
        )
        sdk.models.attach(model.key, wait=True, make_default=True, use_case="bench")


def compare(upstream: str, base: str, ours: str, requests: int, rounds: int) -> None:
    """Rounds of direct, baseline and this checkout (the two servers' order flipped each round) at concurrency 1
    (``requests``) and 32 (5x as many): whatever else the machine does falls on both alike. Printed per round,
    then the medians: p50, and the added p50/p99 as the median of each round's difference to direct."""
    messages = [{"role": "user", "content": "Say hello."}]
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    targets = {
        "direct": (upstream + "/chat/completions", {}, {"model": "fake", "messages": messages}),
        "baseline": (base + "/api/v1/chat/completions", auth, {"model": "bench", "messages": messages}),
        "this": (ours + "/api/v1/chat/completions", auth, {"model": "bench", "messages": messages}),
    }
    seen: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for r in range(rounds):
        order = ["direct", "baseline", "this"] if r % 2 == 0 else ["direct", "this", "baseline"]
        line = [f"round {r + 1}, load average {os.getloadavg()[0]:.2f}:"]
        for name in order:
            url, headers, body = targets[name]
            for concurrency, n in ((1, requests), (32, requests * 5)):
                lat, rps = asyncio.run(load(url, headers, body, n, concurrency))
                seen.setdefault((name, concurrency), []).append((percentile(lat, 0.5), percentile(lat, 0.99), rps))
                line.append(f"{name} c{concurrency} p50 {percentile(lat, 0.5):.2f} ms {rps:.0f}/s")
        print(" ".join(line), flush=True)
    for concurrency in (1, 32):
        direct = seen[("direct", concurrency)]
        for name in ("baseline", "this"):
            runs = seen[(name, concurrency)]
            added50 = statistics.median(x[0] - d[0] for x, d in zip(runs, direct, strict=True))
            added99 = statistics.median(x[1] - d[1] for x, d in zip(runs, direct, strict=True))
            p50, rps = statistics.median(x[0] for x in runs), statistics.median(x[2] for x in runs)
            print(
                f"{name:<9} concurrency {concurrency:>2}: p50 {p50:.2f} ms, added p50 {added50:.2f} ms, "
                f"added p99 {added99:.2f} ms, {rps:.0f} requests/s"
            )


def start_litellm(upstream: str, port: int) -> subprocess.Popen | None:
    venv = REPO / "build" / "litellm-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print("installing LiteLLM's proxy into build/litellm-venv (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True)
    config = venv / "bench-config.yaml"
    config.write_text(
        "model_list:\n  - model_name: fake\n    litellm_params:\n      model: openai/fake\n"
        f"      api_base: {upstream}\n      api_key: sk-fake\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n"
    )
    return subprocess.Popen(
        [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--litellm", action="store_true", help="also measure LiteLLM's proxy (installs it once)")
    parser.add_argument(
        "--limits",
        action="store_true",
        help="generous limits (rpm, tpm, in flight, budget) on the caller's user and the use case",
    )
    parser.add_argument(
        "--paired",
        action="store_true",
        help="also time requests with limits (an API key's and a use case's) against requests without, interleaved",
    )
    parser.add_argument("--paired-only", action="store_true", help="--paired, and nothing else measured")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="CHECKOUT",
        help="a second server from CHECKOUT's src (e.g. a worktree of main) timed against this one in alternated "
        "rounds; nothing else is measured",
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds of --baseline")
    parser.add_argument("--redis", default=None, help="Redis URL for the limit counters, e.g. redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    args.paired = args.paired or args.paired_only

    procs: list[subprocess.Popen] = []
    up_port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "ADAPTIVE_ADMIN_API_KEY": ADMIN_KEY,
        "ADAPTIVE_BUNDLED_MODELS": "false",
        "ADAPTIVE_BUILTIN_RECIPES": "false",
        "ADAPTIVE_ONLINE_GRADING_INTERVAL_S": "0",
        "ADAPTIVE_AB_TEST_EVALUATION_INTERVAL_S": "0",
        "ADAPTIVE_LOG_LEVEL": "warning",
    }
    if args.redis:
        env.update({"ADAPTIVE_REDIS_URL": args.redis, "ADAPTIVE_REDIS_PREFIX": f"bench-{os.getpid()}:"})
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)]))
        upstream = f"http://127.0.0.1:{up_port}/v1"
        ours_server = ServerProcess(tempfile.mkdtemp(prefix="gateway-bench-"), ADMIN_KEY, env=env, timeout_s=180)
        procs.append(ours_server.proc)
        ours = ours_server.url
        sys.path.insert(0, str(REPO / "src"))
        from adaptive_engine import Adaptive

        attach_fake(ours, upstream)
        if args.baseline:
            base_env = {**env, "PYTHONPATH": str(Path(args.baseline).resolve() / "src")}
            base_server = ServerProcess(
                tempfile.mkdtemp(prefix="gateway-base-"), ADMIN_KEY, env=base_env, timeout_s=180
            )
            procs.append(base_server.proc)
            attach_fake(base_server.url, upstream)
            compare(upstream, base_server.url, ours, args.requests, args.rounds)
            return
        with Adaptive(ours, api_key=ADMIN_KEY) as sdk:
            # Upstreams that fail every other call: a 503 (retried after the backoff), a 429 with Retry-After-Ms.
            for kind in ("flaky", "throttled"):
                sdk.use_cases.create(key=f"bench-{kind}")
                other = sdk.models.add_external(
                    name=kind,
                    key=kind,
                    external_model_id="fake",
                    api_key="sk-fake",
                    provider="open_ai",
                    endpoint=f"http://127.0.0.1:{up_port}/{kind}/v1",
                )
                sdk.models.attach(other.key, wait=True, make_default=True, use_case=f"bench-{kind}")
        lite_url = None
        if args.litellm:
            lite_port = free_port()
            proc = start_litellm(upstream, lite_port)
            if proc is not None:
                procs.append(proc)
                wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", timeout=300)
                lite_url = f"http://127.0.0.1:{lite_port}/v1/chat/completions"

        if args.limits:  # every request then passes the limit checks (none is ever reached)
            with Adaptive(ours, api_key=ADMIN_KEY) as sdk:
                for scope, subject in (("USER", "admin@localhost"), ("USE_CASE", "bench")):
                    sdk.usage.set_limits(
                        scope,
                        subject,
                        requests_per_minute=10**9,
                        tokens_per_minute=10**9,
                        max_concurrent=10**6,
                        budget_daily=10**9,
                    )

        messages = [{"role": "user", "content": "Say hello."}]
        if args.paired:
            # The same model behind a second use case; an API key of the admin's: limits on both (none is ever
            # reached), none on the admin's user, so the admin key's calls to "bench" stay unlimited.
            with Adaptive(ours, api_key=ADMIN_KEY) as sdk:
                sdk.use_cases.create(key="bench-limited")
                sdk.models.attach("fake", wait=True, make_default=True, use_case="bench-limited")
                created = sdk.api_keys.create(name="limited")
                limited_key = created.key
                for scope, subject in (("API_KEY", created.api_key.id), ("USE_CASE", "bench-limited")):
                    sdk.usage.set_limits(
                        scope,
                        subject,
                        requests_per_minute=10**9,
                        tokens_per_minute=10**9,
                        max_concurrent=10**6,
                        budget_daily=10**9,
                    )
        targets = [
            ("direct", upstream + "/chat/completions", {}, {"model": "fake", "messages": messages}),
            (
                "through ours",
                ours + "/api/v1/chat/completions",
                {"Authorization": f"Bearer {ADMIN_KEY}"},
                {"model": "bench", "messages": messages},
            ),
            (
                "ours, store=False",
                ours + "/api/v1/chat/completions",
                {"Authorization": f"Bearer {ADMIN_KEY}"},
                {"model": "bench", "messages": messages, "store": False},
            ),
        ]
        # Tools and a JSON schema are checked by the gateway, then passed as given: their cost beside plain chat.
        tools = [
            {
                "type": "function",
                "function": {
                    "name": f"tool_{i}",
                    "description": "A tool",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                        "required": ["city"],
                    },
                },
            }
            for i in range(4)
        ]
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        targets.append(
            (
                "ours, tools+format",
                ours + "/api/v1/chat/completions",
                {"Authorization": f"Bearer {ADMIN_KEY}"},
                {
                    "model": "bench",
                    "messages": messages,
                    "tools": tools,
                    "tool_choice": "auto",
                    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
                },
            )
        )
        if lite_url:
            targets.append(
                (
                    "through LiteLLM",
                    lite_url,
                    {"Authorization": f"Bearer {LITELLM_KEY}"},
                    {"model": "fake", "messages": messages},
                )
            )
        if args.paired:
            plain = ({"Authorization": f"Bearer {ADMIN_KEY}"}, {"model": "bench", "messages": messages})
            limited = ({"Authorization": f"Bearer {limited_key}"}, {"model": "bench-limited", "messages": messages})
            for label, store in (("stored", {}), ("store=False", {"store": False})):
                with_limits, without = asyncio.run(
                    paired(
                        ours + "/api/v1/chat/completions",
                        (limited[0], {**limited[1], **store}),
                        (plain[0], {**plain[1], **store}),
                        args.requests,
                    )
                )
                differences = sorted(x - y for x, y in zip(with_limits, without, strict=True))
                print(
                    f"limits on (key + use case) vs none, interleaved, concurrency 1, {label}: p50 "
                    f"{percentile(with_limits, 0.5):.2f} vs {percentile(without, 0.5):.2f} ms; median of the "
                    f"pairs' differences {differences[len(differences) // 2]:+.3f} ms (target <= 0.2 ms)"
                )
        if args.paired_only:
            return
        print(f"{args.requests} requests per run; completions stored by our server (but with store=False)")
        print(f"{'path':<20}{'conc':>5}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}")
        results: dict[tuple[str, int], tuple[float, float, float]] = {}
        for concurrency in (1, 32):
            for name, url, headers, body in targets:
                lat, rps = asyncio.run(load(url, headers, body, args.requests, concurrency))
                results[(name, concurrency)] = (percentile(lat, 0.5), percentile(lat, 0.99), rps)
                p50, p99, _ = results[(name, concurrency)]
                print(f"{name:<20}{concurrency:>5}{p50:>9.2f}{p99:>9.2f}{rps:>9.0f}")
        for concurrency in (1, 32):
            d50, d99, _ = results[("direct", concurrency)]
            o50, o99, orps = results[("through ours", concurrency)]
            line = f"added by ours at concurrency {concurrency}: p50 {o50 - d50:.2f} ms, p99 {o99 - d99:.2f} ms"
            if lite_url:
                l50, l99, lrps = results[("through LiteLLM", concurrency)]
                line += (
                    f"; LiteLLM adds p50 {l50 - d50:.2f} ms, p99 {l99 - d99:.2f} ms;"
                    f" our req/s vs LiteLLM: {orps / lrps:.2f}x"
                )
            print(line)
        # Retries, one request at a time (the upstream alternates, so every request fails once, then succeeds).
        retried = {}
        for kind in ("flaky", "throttled"):
            lat, _ = asyncio.run(
                load(
                    ours + "/api/v1/chat/completions",
                    {"Authorization": f"Bearer {ADMIN_KEY}"},
                    {"model": f"bench-{kind}", "messages": messages},
                    max(20, args.requests // 20),
                    1,
                )
            )
            retried[kind] = (percentile(lat, 0.5), max(lat))
        plain = results[("through ours", 1)][0]
        print(
            f"a request retried after a 503 (backoff 0.2-0.4 s): p50 {retried['flaky'][0]:.1f} ms, max "
            f"{retried['flaky'][1]:.1f} ms; plain p50 {plain:.2f} ms: one backoff, no timeout"
        )
        print(
            f"a request retried after a 429 with Retry-After-Ms 50: p50 {retried['throttled'][0]:.1f} ms, max "
            f"{retried['throttled'][1]:.1f} ms"
        )
        t50 = results[("ours, tools+format", 1)][0] - results[("through ours", 1)][0]
        print(f"tools + response_format beside plain chat at concurrency 1: p50 {t50:+.2f} ms (target <= 0.2 ms)")
        print(
            f"requests/s through one server process (concurrency 32): {results[('through ours', 32)][2]:.0f} "
            "(target >= 500)"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
