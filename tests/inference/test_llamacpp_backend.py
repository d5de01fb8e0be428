"""The llama.cpp backend against the real bundled SmolLM2 GGUF (loaded once for the module), and LoRA adapters
converted to GGUF checked against the transformers backend's own forward pass."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from adaptive_engine import gguf_lora, models_bundled
from adaptive_engine.server.inference.backends import llamacpp
from adaptive_engine.server.inference.backends.base import (
    BackendInvalidRequest,
    BackendLoadError,
    GenerationParams,
    GenerationRequest,
)
from adaptive_engine.server.inference.backends.llamacpp import LlamaCppChatBackend
from adaptive_engine.server.inference.backends.local import LocalModelSpec, bundled_chat_spec
from adaptive_engine.server.inference.grammar import json_grammar
from tests.inference.engine_helpers import chat, collect, llamacpp_logits, until
from tests.inference.fixtures import model_cache_dir

pytestmark = pytest.mark.slow

# Both engines answer this one alike. To the bare "What is the capital of France?" transformers answers "The
# capital..." and llama.cpp "L'Étoile, ...": the two first tokens are nearly tied (log-probabilities -1.88 and
# -1.97 in float32), and llama.cpp's quantized arithmetic tips the tie (docs/inference.md).
CAPITAL = "What is the capital of France? Answer in one sentence."
PARIS = "The capital of France is Paris."


@pytest.fixture(scope="module")
async def backend():
    served = LlamaCppChatBackend(bundled_chat_spec(str(model_cache_dir())), name="smollm2-llamacpp", max_batch_rows=16)
    await served.load()
    yield served
    await served.unload()


def free_sequences(backend) -> int:
    return len(backend.engine._free)


async def test_greedy_answer_same_as_transformers(backend):
    result = await backend.generate(chat(CAPITAL, max_tokens=16))
    assert [c.text for c in result.choices] == [PARIS]
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.prompt_tokens > 10
    assert result.usage.completion_tokens == 8  # 7 text tokens + the end-of-turn token, as with transformers


async def test_streaming_token_by_token(backend):
    deltas, usage = await collect(backend, chat(CAPITAL, max_tokens=16))
    assert "".join(d.text for d in deltas) == PARIS
    assert len([d for d in deltas if d.text]) > 3
    assert deltas[-1].finish_reason == "stop" and all(d.finish_reason is None for d in deltas[:-1])
    assert usage.completion_tokens == 8


async def test_max_tokens_and_stop_sequences(backend):
    result = await backend.generate(chat(CAPITAL, max_tokens=3))
    assert (result.choices[0].text, result.choices[0].finish_reason) == ("The capital of", "length")
    assert result.usage.completion_tokens == 3
    result = await backend.generate(chat(CAPITAL, max_tokens=16, stop=[" Paris", "zzz"]))
    assert (result.choices[0].text, result.choices[0].finish_reason) == ("The capital of France is", "stop")
    deltas, _ = await collect(backend, chat(CAPITAL, max_tokens=16, stop=["France is P"]))
    assert "".join(d.text for d in deltas) == "The capital of "  # the start of a stop sequence is never sent


async def test_raw_prompt_completion(backend):
    request = GenerationRequest(prompt="The capital of France is", params=GenerationParams(temperature=0, max_tokens=4))
    assert "Paris" in (await backend.generate(request)).choices[0].text


async def test_n_choices_and_seed(backend):
    first = await backend.generate(chat("Tell me a story.", temperature=1.0, top_p=0.9, n=3, seed=11, max_tokens=8))
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert len({c.text for c in first.choices}) > 1  # sampled choices differ
    assert first.usage.completion_tokens == 24
    again = await backend.generate(chat("Tell me a story.", temperature=1.0, top_p=0.9, n=3, seed=11, max_tokens=8))
    assert [c.text for c in again.choices] == [c.text for c in first.choices]  # same seed, same samples
    other = await backend.generate(chat("Tell me a story.", temperature=1.0, top_p=0.9, n=3, seed=12, max_tokens=8))
    assert [c.text for c in other.choices] != [c.text for c in first.choices]
    greedy = await backend.generate(chat(CAPITAL, n=2, max_tokens=16))
    assert [c.text for c in greedy.choices] == [PARIS, PARIS]  # the choices share the prompt's cells
    await until(lambda: free_sequences(backend) == backend.engine.runtime.sequences)  # all given back


async def test_concurrent_requests_share_decode_steps(backend):
    """Batched, llama.cpp's arithmetic depends on the batch's size (not bit-exact with one sequence), so a
    nearly tied greedy step may go the other way: only a clear answer is compared with its sequential one."""
    prompts = [CAPITAL, "Name three colors.", "What is 2+2?", "Write a haiku about the sea."]
    stats = backend.stats
    batched_before = stats.batched_steps
    results = await asyncio.gather(*(backend.generate(chat(p, max_tokens=16)) for p in prompts))
    assert results[0].choices[0].text == PARIS
    assert all(r.choices[0].text and r.usage.completion_tokens > 0 for r in results)
    assert stats.batched_steps > batched_before  # one llama_decode served several requests
    assert stats.max_batch_requests > 1


async def test_request_joins_a_running_batch(backend):
    stats = backend.stats
    prefills = stats.prefills
    long = asyncio.create_task(backend.generate(chat("Write a long poem about the sea.", max_tokens=30)))
    await until(lambda: stats.prefills > prefills)
    short = await backend.generate(chat(CAPITAL, max_tokens=16, n=2))
    assert [c.text for c in short.choices] == [PARIS, PARIS]
    assert (await long).choices[0].finish_reason in ("length", "stop")


async def test_cancelled_stream_frees_its_sequence(backend):
    stats = backend.stats
    cancelled_before = stats.cancelled
    started = asyncio.Event()

    async def consume():
        async for _ in backend.stream(chat("Write a long poem about the sea.", max_tokens=400)):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: stats.cancelled > cancelled_before)
    await until(lambda: free_sequences(backend) == backend.engine.runtime.sequences)
    assert (await backend.generate(chat(CAPITAL, max_tokens=16))).choices[0].text == PARIS


@pytest.mark.parametrize("params", [{"n": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"max_tokens": 0}])
async def test_invalid_params_rejected_before_work(backend, params):
    prefills = backend.stats.prefills
    with pytest.raises(BackendInvalidRequest):
        await backend.generate(chat(CAPITAL, **params))
    assert backend.stats.prefills == prefills


async def test_prompt_longer_than_context(backend):
    with pytest.raises(BackendInvalidRequest, match="tokens"):
        await backend.generate(chat("word " * 9000, max_tokens=4))


async def test_constrained_output_always_parses(backend):
    pattern = r'\{"answer": "(yes|no)", "city": "[A-Z][a-z]{1,12}"\}'
    result = await backend.generate(chat(CAPITAL, max_tokens=40, constraint=pattern))
    assert re.fullmatch(pattern, result.choices[0].text), result.choices[0].text
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    grammar = json_grammar(schema)
    sampled = await backend.generate(chat(CAPITAL, max_tokens=60, grammar=grammar, temperature=1.0, n=4, seed=3))
    for choice in sampled.choices:
        value = json.loads(choice.text)
        assert set(value) == {"city", "population"} and isinstance(value["population"], int), choice.text
    with pytest.raises(BackendInvalidRequest, match="invalid output constraint"):
        await backend.generate(chat(CAPITAL, constraint="(unclosed"))


async def test_logprobs_are_the_models_own(backend):
    import math

    result = await backend.generate(chat(CAPITAL, max_tokens=16, logprobs=3))
    entries = result.choices[0].logprobs["content"]
    assert "".join(e["token"] for e in entries) == PARIS
    for entry in entries:  # greedy: each token is the most likely one and heads its alternatives
        assert len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert math.isclose(entry["top_logprobs"][0]["logprob"], entry["logprob"], abs_tol=1e-5)
        assert entry["logprob"] <= 0


async def test_load_errors(tmp_path):
    with pytest.raises(BackendLoadError, match="not a GGUF file"):
        await LlamaCppChatBackend(LocalModelSpec(path=str(tmp_path))).load()
    missing = LlamaCppChatBackend(LocalModelSpec(path=str(tmp_path), gguf_file="x.gguf"))
    with pytest.raises(BackendLoadError, match="GGUF file not found"):
        await missing.load()
    assert "GGUF file not found" in (await missing.health()).detail


# --------------------------------------------------------------------------- LoRA adapters


def make_adapter(folder: Path, scale: float = 0.05, **config) -> Path:
    """A PEFT LoRA adapter on the converted bundled model, with non-zero B matrices scaled so that the adapter
    moves the logits by a few units (a trained adapter's order of magnitude)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = models_bundled.bundled_chat_model_dir(model_cache_dir().parent)
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(0)  # the A matrices PEFT draws: the same adapter on every run
    config.setdefault("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    adapted = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, init_lora_weights=False, **config))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    adapted.save_pretrained(folder)
    return folder


def transformers_logits(folder: Path | None, ids: list[int]):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(models_bundled.bundled_chat_model_dir(model_cache_dir().parent))
    if folder is not None:
        model = PeftModel.from_pretrained(model, folder)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].float()


async def test_gguf_lora_moves_the_logits_as_peft_does(backend, tmp_path):
    """The adapter's effect on the next-token logits through llama.cpp (quantized weights) matches its effect
    through transformers (PEFT on the dequantized weights): q and k included, whose rows the GGUF reorders."""
    import torch

    adapter = make_adapter(tmp_path / "adapter")
    lora = gguf_lora.convert(adapter, backend.model.layout(), tmp_path / "lora.gguf")
    ids = backend.prompt_ids(chat(CAPITAL))
    hf_base, cpp_base = transformers_logits(None, ids), llamacpp_logits(None, ids)
    assert torch.corrcoef(torch.stack([hf_base, cpp_base]))[0, 1] > 0.99  # the same model, quantized or not
    hf_delta = transformers_logits(adapter, ids) - hf_base
    cpp_delta = llamacpp_logits(lora, ids) - cpp_base
    assert hf_delta.std() > 0.5  # the adapter does move the logits
    correlation = torch.corrcoef(torch.stack([hf_delta, cpp_delta]))[0, 1]
    # Quantization noise runs through both of llama.cpp's passes; runs with other random adapters gave 0.93-0.96.
    assert correlation > 0.9, float(correlation)


async def test_adapter_served_on_its_gguf_base(backend, tmp_path):
    adapter = make_adapter(tmp_path / "adapter", scale=0.2)  # strong enough to change a confident answer
    base = bundled_chat_spec(str(model_cache_dir()))
    spec = LocalModelSpec(path=str(adapter), base=base, cache_dir=str(tmp_path / "cache"))
    assert llamacpp.cannot_serve(spec) is None
    served = LlamaCppChatBackend(spec, name="adapted")
    await served.load()
    try:
        haiku = chat("Write a haiku about the sea.", max_tokens=24)
        answer = (await served.generate(haiku)).choices[0].text
        assert answer != (await backend.generate(haiku)).choices[0].text  # the adapter changes the output
        assert (await served.generate(haiku)).choices[0].text == answer
    finally:
        await served.unload()
    assert (tmp_path / "cache" / "lora.gguf").is_file()  # converted once, kept for the next load


def test_what_a_gguf_lora_cannot_express_is_named(tmp_path):
    base = bundled_chat_spec(str(model_cache_dir()))
    cases = {
        "DoRA": {"use_dora": True},
        "trained biases": {"bias": "all"},
        "fully trained modules": {"modules_to_save": ["lm_head"]},
        "LoRA on embed_tokens": {"target_modules": ["q_proj", "embed_tokens"]},
    }
    for i, (needle, change) in enumerate(cases.items()):
        folder = tmp_path / str(i)
        folder.mkdir()
        config = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"], **change}
        (folder / "adapter_config.json").write_text(json.dumps(config))
        reason = llamacpp.cannot_serve(LocalModelSpec(path=str(folder), base=base))
        assert reason is not None and needle in reason, reason
    plain = LocalModelSpec(path=str(tmp_path))
    assert llamacpp.cannot_serve(plain) == "the model is not a GGUF file"
