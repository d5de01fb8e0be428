"""Real reward servers for the tests: the official client's RewardServer class, and broken servers."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tests.support import free_port

external = __import__("adaptive_sdk.external", fromlist=["RewardServer"])
reward_types = __import__("adaptive_sdk.external.reward_types", fromlist=["BaseModel"])


class ExpectedWord(reward_types.BaseModel):
    expected: str


class WordRewardServer(external.RewardServer[ExpectedWord]):
    """Reward 1.0 when the completion contains the expected word, else 0.0."""

    async def score(self, request):
        completion = request.turns[-1].content
        found = request.metadata.expected.lower() in completion.lower()
        return external.Response(
            reward=1.0 if found else 0.0,
            metadata={"feedback": f"'{request.metadata.expected}' {'found' if found else 'missing'}"},
        )

    async def info(self):
        return external.ServerInfo(version="1.2", name="word-checker", description="checks an expected word")


class LengthRewardServer(external.RewardServer[external.EmptyMetadata]):
    """Reward = number of characters of the last turn; no metadata."""

    async def score(self, request):
        return external.Response(reward=float(len(request.turns[-1].content)), metadata={"reasoning": "length"})

    async def info(self):
        return external.ServerInfo(version="0.1", name="length", description="counts characters")


def _wait_started(server: uvicorn.Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("reward server did not start")
        time.sleep(0.02)


class RunningRewardServer:
    def __init__(self, cls: type) -> None:
        self.port = free_port()
        self.instance = cls(
            self.port, ExpectedWord if cls is WordRewardServer else external.EmptyMetadata, blocking=False
        )
        self.url = f"http://127.0.0.1:{self.port}"
        _wait_started(self.instance.server)

    def stop(self) -> None:
        self.instance.server.stop()


def broken_app(delay_s: float) -> Starlette:
    async def garbage(request):
        return PlainTextResponse("<html>not json</html>")

    async def slow(request):
        await asyncio.sleep(delay_s)
        return JSONResponse({"name": "slow", "version": "1", "description": "too slow"})

    async def huge(request):
        return PlainTextResponse("x" * (5 * 1024 * 1024))

    async def bad_reward(request):
        return JSONResponse({"responses": [{"reward": "high", "metadata": {}}]})

    routes = [
        Route("/garbage/info", garbage),
        Route("/garbage/batch_score", garbage, methods=["POST"]),
        Route("/garbage/metadata_schema", garbage),
        Route("/slow/info", slow),
        Route("/slow/metadata_schema", slow),
        Route("/slow/batch_score", slow, methods=["POST"]),
        Route("/huge/info", huge),
        Route("/badreward/info", lambda r: JSONResponse({"name": "b", "version": "1", "description": "d"})),
        Route("/badreward/metadata_schema", lambda r: JSONResponse({})),
        Route("/badreward/batch_score", bad_reward, methods=["POST"]),
    ]
    return Starlette(routes=routes)


class BrokenServer:
    def __init__(self, delay_s: float = 5.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(broken_app(delay_s), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        _wait_started(self.server)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
