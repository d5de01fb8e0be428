"""A stand-in for ``vllm serve`` on machines without a GPU: the same command line, the same HTTP surface.

    python tests/inference/fake_vllm.py serve MODEL_FOLDER --host 127.0.0.1 --port 8001 --served-model-name NAME
        [--enable-lora --lora-modules NAME=PATH ...] [--runner pooling] [--max-lora-rank N]
        [--tensor-parallel-size N] [--max-model-len N] [--gpu-memory-utilization F]

Like vLLM it refuses unknown arguments (exit 2) and a folder without config.json (exit 1), checks the
``VLLM_API_KEY`` bearer token on /v1, answers 404 for a model name it does not serve, and serves embeddings
only with ``--runner pooling``. It answers ``[<model>] <last message or prompt>`` (cut to ``max_tokens``
words), streamed one word per chunk. ``FAKE_VLLM_STARTUP_S`` delays the moment /health says 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("model")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--served-model-name", nargs="+")
    serve.add_argument("--enable-lora", action="store_true")
    serve.add_argument("--lora-modules", nargs="+", default=[])
    serve.add_argument("--max-lora-rank", type=int, default=16)
    serve.add_argument("--runner", choices=["auto", "generate", "pooling"], default="auto")
    serve.add_argument("--tensor-parallel-size", type=int, default=1)
    serve.add_argument("--max-model-len", type=int)
    serve.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    return parser.parse_args(argv)


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def main(argv: list[str]) -> int:
    args = parse(argv)
    print(f"fake-vllm argv: {json.dumps(argv)}", flush=True)
    folder = Path(args.model)
    if not (folder / "config.json").is_file():
        print(f"ValueError: {folder} is not a model folder: no config.json", file=sys.stderr, flush=True)
        return 1
    if args.lora_modules and not args.enable_lora:
        print("ValueError: --lora-modules needs --enable-lora", file=sys.stderr, flush=True)
        return 1
    served = list(args.served_model_name or [args.model])
    loras = dict(item.split("=", 1) for item in args.lora_modules)
    names = served + list(loras)
    ready_at = time.monotonic() + float(os.environ.get("FAKE_VLLM_STARTUP_S") or 0)
    api_key = os.environ.get("VLLM_API_KEY")

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": message, "type": "BadRequestError", "code": status}}, status_code=status
        )

    async def health(_: Request) -> Response:
        return Response(status_code=200 if time.monotonic() >= ready_at else 503)

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "owned_by": "vllm", "root": loras.get(n, args.model)} for n in names
                ],
            }
        )

    async def complete(request: Request) -> Response:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        body = json.loads(await request.body() or b"{}")
        model = body.get("model")
        if model not in names:
            return error(f"The model `{model}` does not exist.", 404)
        operation = request.path_params["operation"]
        if operation == "embeddings":
            if args.runner != "pooling":
                return error("The model does not support Embeddings API", 400)
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), float(sum(map(ord, t)) % 97), 1.0]}
                for i, t in enumerate(inputs)
            ]
            tokens = sum(len(words(t)) for t in inputs)
            return JSONResponse(
                {
                    "object": "list",
                    "model": model,
                    "data": data,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )
        if args.runner == "pooling":
            return error("The model does not support Completions API", 400)
        chat = operation == "chat/completions"
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        pieces = words(f"[{model}] {prompt}")
        limit = body.get("max_tokens")
        finish = "stop"
        if limit is not None and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        usage = {
            "prompt_tokens": len(words(prompt)),
            "completion_tokens": len(pieces),
            "total_tokens": len(words(prompt)) + len(pieces),
        }
        created = int(time.time())
        kind = "chat.completion" if chat else "text_completion"
        if body.get("stream"):

            async def events():
                for i, piece in enumerate(pieces):
                    last = i == len(pieces) - 1
                    choice: dict[str, Any] = {"index": 0, "finish_reason": finish if last else None}
                    if chat:
                        choice["delta"] = {"content": piece} if i else {"role": "assistant", "content": piece}
                    else:
                        choice["text"] = piece
                    chunk = {
                        "id": "x",
                        "object": kind + ".chunk",
                        "created": created,
                        "model": model,
                        "choices": [choice],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0)
                if (body.get("stream_options") or {}).get("include_usage"):
                    chunk = {"id": "x", "object": kind + ".chunk", "model": model, "choices": [], "usage": usage}
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        text = "".join(pieces)
        choice = {"index": 0, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return JSONResponse(
            {"id": "x", "object": kind, "created": created, "model": model, "choices": [choice], "usage": usage}
        )

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/{operation:path}", complete, methods=["POST"]),
        ]
    )
    print(f"INFO: serving {names} from {folder} on {args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
