"""A model's compute config on the local backend (a tiny real causal LM): max_seq_len caps prompt plus answer,
kv_cache_len bounds what the batch holds, and a changed config is taken by the loaded backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adaptive_engine.server.inference.backends.base import (
    BackendInvalidRequest,
    GenerationParams,
    GenerationRequest,
)
from adaptive_engine.server.inference.backends.local import LocalChatBackend, LocalModelSpec
from tests.models.support import tiny_llama_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama_folder(tmp_path_factory.mktemp("tiny"))


def raw(prompt: str, **params) -> GenerationRequest:
    params.setdefault("temperature", 0.0)
    return GenerationRequest(prompt=prompt, params=GenerationParams(**params))


async def _loaded(folder: Path, compute: dict) -> LocalChatBackend:
    backend = LocalChatBackend(LocalModelSpec(path=str(folder)), name="tiny", compute=compute)
    await backend.load()
    return backend


async def test_max_seq_len_caps_prompt_and_answer(tiny: Path) -> None:
    backend = await _loaded(tiny, {"max_seq_len": 24})
    try:
        prompt_tokens = len(backend.prompt_ids(raw("one two three")))
        answer = await backend.generate(raw("one two three", max_tokens=200))
        assert answer.usage.prompt_tokens == prompt_tokens
        assert answer.usage.completion_tokens <= 24 - prompt_tokens
        with pytest.raises(BackendInvalidRequest, match="max_seq_len 24"):
            await backend.generate(raw("word " * 40, max_tokens=1))
        backend.apply_compute({"max_seq_len": 200})  # taken at once by the loaded backend
        assert (await backend.generate(raw("word " * 40, max_tokens=2))).usage.completion_tokens >= 1
    finally:
        await backend.unload()


async def test_kv_cache_len_bounds_the_batch(tiny: Path) -> None:
    backend = await _loaded(tiny, {})
    try:
        prompt_tokens = len(backend.prompt_ids(raw("alpha beta")))
        need = prompt_tokens + 8
        backend.apply_compute({"kv_cache_len": 2 * need})  # room for two requests at a time
        answers = await asyncio.gather(*(backend.generate(raw("alpha beta", max_tokens=8)) for _ in range(6)))
        assert all(a.usage.completion_tokens >= 1 for a in answers)
        assert 1 <= backend.stats.max_batch_rows <= 2
        # Three choices cannot share a cache of two rows' room, whatever their length.
        with pytest.raises(BackendInvalidRequest, match="kv_cache_len"):
            await backend.generate(raw("alpha beta " * 20, max_tokens=8, n=3))
    finally:
        await backend.unload()
