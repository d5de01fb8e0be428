"""The local backend against the real bundled SmolLM2 model (loaded once per session)."""

from __future__ import annotations

import asyncio

import pytest

from adaptive_engine.server.inference.backends.base import (
    BackendError,
    BackendInvalidRequest,
    BackendLoadError,
    GenerationParams,
    GenerationRequest,
)
from adaptive_engine.server.inference.backends.local import LocalChatBackend, LocalModelSpec
from tests.inference.engine_helpers import chat, collect, until

pytestmark = pytest.mark.slow

CAPITAL = "What is the capital of France?"


async def test_greedy_answer(chat_backend):
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=16))
    assert [c.text for c in result.choices] == ["The capital of France is Paris."]
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.prompt_tokens > 10
    assert result.usage.completion_tokens == 8  # 7 text tokens + the end-of-turn token


async def test_streaming_matches_generate(chat_backend):
    deltas, usage = await collect(chat_backend, chat(CAPITAL, max_tokens=16))
    assert "".join(d.text for d in deltas) == "The capital of France is Paris."
    assert len([d for d in deltas if d.text]) > 3  # token by token, not at the end
    assert deltas[-1].finish_reason == "stop" and all(d.finish_reason is None for d in deltas[:-1])
    assert usage.completion_tokens == 8


async def test_max_tokens_gives_length(chat_backend):
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=3))
    assert result.choices[0].text == "The capital of"
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == 3


async def test_stop_sequences_cut_text(chat_backend):
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=16, stop=[" Paris", "zzz"]))
    assert result.choices[0].text == "The capital of France is"
    assert result.choices[0].finish_reason == "stop"
    # streamed, the beginning of a stop sequence is held back and never sent
    deltas, _ = await collect(chat_backend, chat(CAPITAL, max_tokens=16, stop=["France is P"]))
    assert "".join(d.text for d in deltas) == "The capital of "
    assert deltas[-1].finish_reason == "stop"


async def test_raw_prompt_completion(chat_backend):
    result = await chat_backend.generate(
        GenerationRequest(prompt="The capital of France is", params=GenerationParams(temperature=0, max_tokens=4))
    )
    assert "Paris" in result.choices[0].text


async def test_n_choices_and_seed(chat_backend):
    request = chat("Tell me a story.", temperature=1.0, top_p=0.9, n=3, seed=11, max_tokens=8)
    first = await chat_backend.generate(request)
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert len({c.text for c in first.choices}) > 1  # sampled choices differ
    assert first.usage.completion_tokens == 24
    again = await chat_backend.generate(
        chat("Tell me a story.", temperature=1.0, top_p=0.9, n=3, seed=11, max_tokens=8)
    )
    assert [c.text for c in again.choices] == [c.text for c in first.choices]  # same seed, same samples
    greedy = await chat_backend.generate(chat(CAPITAL, n=2, max_tokens=16))
    assert [c.text for c in greedy.choices] == ["The capital of France is Paris."] * 2


async def test_concurrent_requests_batch_and_match_sequential(chat_backend):
    prompts = [CAPITAL, "Name three colors.", "What is 2+2?", "Write a haiku about the sea."]
    sequential = [(await chat_backend.generate(chat(p, max_tokens=10))).choices[0].text for p in prompts]
    stats = chat_backend.stats
    batched_before = stats.batched_steps
    results = await asyncio.gather(*(chat_backend.generate(chat(p, max_tokens=10)) for p in prompts))
    assert [r.choices[0].text for r in results] == sequential
    assert stats.batched_steps > batched_before  # decode steps served several requests at once
    assert stats.max_batch_requests > 1


async def test_request_joins_a_running_batch(chat_backend):
    stats = chat_backend.stats
    prefills = stats.prefills
    long = asyncio.create_task(chat_backend.generate(chat("Write a long poem about the sea.", max_tokens=20)))
    await until(lambda: stats.prefills > prefills)
    # admitted while the long one decodes; its two choices share one prefilled prompt row, copied
    short = await chat_backend.generate(chat(CAPITAL, max_tokens=16, n=2))
    assert [c.text for c in short.choices] == ["The capital of France is Paris."] * 2
    assert (await long).choices[0].finish_reason in ("length", "stop")


def test_sampling_draws_from_the_distribution():
    import torch

    from adaptive_engine.server.inference.batching import _draw

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]]).repeat(20000, 1)
    generator = torch.Generator().manual_seed(5)
    counts = torch.bincount(_draw(probs, generator), minlength=5) / 20000
    assert counts[1] == 0 and counts[4] == 0  # a token without probability is never drawn
    assert torch.allclose(counts, probs[0], atol=0.02)
    again = _draw(probs[:8], torch.Generator().manual_seed(5))
    assert torch.equal(again, _draw(probs[:8], torch.Generator().manual_seed(5)))  # seeded: reproducible


async def test_cancelled_stream_leaves_the_batch(chat_backend):
    stats = chat_backend.stats
    cancelled_before = stats.cancelled
    started = asyncio.Event()

    async def consume():
        async for _ in chat_backend.stream(chat("Write a long poem about the sea.", max_tokens=400)):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()  # what the server does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: stats.cancelled > cancelled_before)
    # the engine keeps serving
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=16))
    assert result.choices[0].text == "The capital of France is Paris."


async def test_cancelled_generate_leaves_the_batch(chat_backend):
    stats = chat_backend.stats
    cancelled_before = stats.cancelled
    prefills = stats.prefills
    task = asyncio.create_task(chat_backend.generate(chat("Count from one to one hundred.", max_tokens=400)))
    await until(lambda: stats.prefills > prefills)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: stats.cancelled > cancelled_before)


async def test_a_failing_prefill_fails_its_request_and_the_engine_goes_on(chat_backend):
    """A fault injected into one prefill (the engine's own step, replaced once): the caller gets an error instead of
    waiting forever, and the next request is served."""
    engine = chat_backend._engine
    prefill = engine._prefill

    def broken(jobs):
        engine._prefill = prefill
        raise RuntimeError("injected fault")

    engine._prefill = broken
    with pytest.raises(BackendError, match="injected fault"):
        await asyncio.wait_for(chat_backend.generate(chat(CAPITAL, max_tokens=16)), 120)
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=16))
    assert result.choices[0].text == "The capital of France is Paris."


@pytest.mark.parametrize(
    "params",
    [{"n": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_tokens": 0}],
)
async def test_invalid_params_rejected_before_work(chat_backend, params):
    submitted = chat_backend.stats.prefills
    with pytest.raises(BackendInvalidRequest):
        await chat_backend.generate(chat(CAPITAL, **params))
    assert chat_backend.stats.prefills == submitted


async def test_constrained_output_matches_the_pattern(chat_backend):
    import re

    pattern = r'\{"answer": "(yes|no)", "city": "[A-Z][a-z]{1,12}"\}'
    result = await chat_backend.generate(chat(CAPITAL, max_tokens=40, constraint=pattern))
    assert re.fullmatch(pattern, result.choices[0].text), result.choices[0].text
    assert result.choices[0].finish_reason == "stop"
    with pytest.raises(BackendInvalidRequest, match="invalid output constraint"):
        await chat_backend.generate(chat(CAPITAL, constraint="(unclosed"))


async def test_prompt_longer_than_context(chat_backend):
    with pytest.raises(BackendInvalidRequest, match="tokens"):
        await chat_backend.generate(chat("word " * 9000, max_tokens=4))


async def test_plain_folder_and_peft_adapter(chat_backend, tmp_path):
    """The converted cache is a plain HF folder; a (zero-initialized) LoRA adapter on it answers like the base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = chat_backend.spec.cache_dir
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    adapted = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapted.save_pretrained(tmp_path / "adapter")
    del model, adapted
    backend = LocalChatBackend(
        LocalModelSpec(path=str(tmp_path / "adapter"), base=LocalModelSpec(path=base_dir)), name="adapted"
    )
    await backend.load()
    try:
        result = await backend.generate(chat(CAPITAL, max_tokens=16))
        assert result.choices[0].text == "The capital of France is Paris."
    finally:
        await backend.unload()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()  # the base was not copied


async def test_load_errors(tmp_path):
    missing = LocalChatBackend(LocalModelSpec(path=str(tmp_path / "nope")))
    with pytest.raises(BackendLoadError, match="not found"):
        await missing.load()
    assert (await missing.health()).detail.startswith("model folder not found")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendLoadError, match="neither config.json"):
        await LocalChatBackend(LocalModelSpec(path=str(tmp_path / "empty"))).load()
    with pytest.raises(BackendLoadError, match="GGUF file not found"):
        await LocalChatBackend(
            LocalModelSpec(path=str(tmp_path / "empty"), gguf_file="x.gguf", cache_dir=str(tmp_path / "cache"))
        ).load()


async def test_embeddings(embedding_backend):
    result = await embedding_backend.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."])
    assert embedding_backend.dimensions == 384
    assert [len(v) for v in result.vectors] == [384, 384, 384]
    for v in result.vectors:
        assert abs(sum(x * x for x in v) - 1.0) < 1e-4

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(result.vectors[0], result.vectors[1]) > cos(result.vectors[0], result.vectors[2])
    assert result.usage.prompt_tokens > 10
    with pytest.raises(BackendInvalidRequest):
        await embedding_backend.embed([])
