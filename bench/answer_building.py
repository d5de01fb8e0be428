"""What building and serializing one data-plane answer costs, in process (no network, no server: the
gateway's per-request CPU on this step alone, far less sensitive to a busy machine than the end-to-end bench).

Measured in the same run: the typed answers the routes send (domains/inference/schemas.py, built with their
validating constructor and serialized by pydantic's serializer) against the baseline they replaced, dicts sent
through Starlette's JSONResponse and ``json.dumps`` for stream events. Shapes: a chat answer (1 choice, a
provider's extras), a streamed chat chunk, a completion, and an embedding answer (8 vectors of 1024 floats).

    python bench/answer_building.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from starlette.responses import JSONResponse, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adaptive_engine.server.domains.inference.schemas import (  # noqa: E402
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionResponse,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
)

REQUEST_ID, SESSION_ID, COMPLETION_ID = (str(uuid.uuid4()) for _ in range(3))
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
MESSAGE = {"role": "assistant", "content": "Hello! How can I help you today? " * 3, "refusal": None}
EXTRA = {"system_fingerprint": "fp_1234", "service_tier": "default"}
VECTORS = [[0.001 * i for i in range(1024)] for _ in range(8)]


def chat_dict() -> Response:
    choice = {
        "index": 0,
        "message": {**MESSAGE, "id": COMPLETION_ID},
        "finish_reason": "stop",
        "completion_id": COMPLETION_ID,
        "model": "model",
    }
    return JSONResponse(
        {
            "id": REQUEST_ID,
            "object": "chat.completion",
            "created": 1,
            "model": "uc/model",
            "session_id": SESSION_ID,
            "choices": [choice],
            "usage": USAGE,
            **EXTRA,
        }
    )


def chat_typed() -> Response:
    message = {**MESSAGE, "id": COMPLETION_ID}
    choice = ChatChoice(
        index=0, message=message, finish_reason="stop", completion_id=COMPLETION_ID, model="model", logprobs=None
    )
    answer = ChatCompletionResponse(
        id=REQUEST_ID, created=1, model="uc/model", session_id=SESSION_ID, choices=[choice], usage=USAGE, **EXTRA
    )
    return Response(answer.to_json(), media_type="application/json")


def chunk_dict() -> bytes:
    choice = {
        "index": 0,
        "delta": {"role": "assistant", "content": "Hello", "id": COMPLETION_ID},
        "completion_id": COMPLETION_ID,
        "finish_reason": None,
    }
    head = {"id": REQUEST_ID, "object": "chat.completion.chunk", "created": 1, "model": "uc/model"}
    payload = {**head, "session_id": SESSION_ID, "choices": [choice]}
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def chunk_typed() -> bytes:
    choice = ChatChunkChoice(
        index=0,
        delta={"role": "assistant", "content": "Hello", "id": COMPLETION_ID},
        completion_id=COMPLETION_ID,
        finish_reason=None,
        logprobs=None,
    )
    chunk = ChatCompletionChunk(
        id=REQUEST_ID,
        created=1,
        model="uc/model",
        session_id=SESSION_ID,
        choices=[choice],
    )
    return b"data: " + chunk.to_json() + b"\n\n"


def completion_dict() -> Response:
    choice = {
        "index": 0,
        "text": MESSAGE["content"],
        "finish_reason": "stop",
        "logprobs": None,
        "completion_id": COMPLETION_ID,
        "model": "model",
    }
    return JSONResponse(
        {
            "id": REQUEST_ID,
            "object": "text_completion",
            "created": 1,
            "model": "uc/model",
            "session_id": SESSION_ID,
            "choices": [choice],
            "usage": USAGE,
        }
    )


def completion_typed() -> Response:
    choice = CompletionChoice(
        index=0,
        text=MESSAGE["content"],
        finish_reason="stop",
        logprobs=None,
        completion_id=COMPLETION_ID,
        model="model",
    )
    answer = CompletionResponse(
        id=REQUEST_ID, created=1, model="uc/model", session_id=SESSION_ID, choices=[choice], usage=USAGE
    )
    return Response(answer.to_json(), media_type="application/json")


def embeddings_dict() -> Response:
    return JSONResponse(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(VECTORS)],
            "model": "uc/embedder",
            "usage": {"prompt_tokens": 8, "completion_tokens": 0, "total_tokens": 8},
        }
    )


def embeddings_typed() -> Response:
    answer = EmbeddingResponse(
        data=[Embedding(index=i, embedding=list(v)) for i, v in enumerate(VECTORS)],
        model="uc/embedder",
        usage=EmbeddingUsage(prompt_tokens=8, total_tokens=8),
    )
    return Response(answer.to_json(), media_type="application/json")


def _seconds(build: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        build()
    return time.perf_counter() - start


def per_call_us(baseline: Callable[[], object], typed: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Microseconds per call of each, the best of seven timings of ``rounds`` calls taken in turns (a busy
    machine then slows both alike)."""
    best = [float("inf"), float("inf")]
    for _ in range(7):
        for i, build in enumerate((baseline, typed)):
            best[i] = min(best[i], _seconds(build, rounds))
    return best[0] / rounds * 1e6, best[1] / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    cases = [
        ("chat answer", chat_dict, chat_typed, args.rounds),
        ("chat stream chunk", chunk_dict, chunk_typed, args.rounds),
        ("completion answer", completion_dict, completion_typed, args.rounds),
        ("embeddings 8x1024", embeddings_dict, embeddings_typed, max(1, args.rounds // 100)),
    ]
    print(f"{'answer':<20} {'dicts us':>9} {'typed us':>9} {'typed-dicts':>12}")
    for name, baseline, typed, rounds in cases:
        before, after = per_call_us(baseline, typed, rounds)
        print(f"{name:<20} {before:>9.2f} {after:>9.2f} {after - before:>+12.2f}")


if __name__ == "__main__":
    main()
