"""The training cores on the bundled model, a couple of optimizer steps each (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_engine.recipe.training import (
    GrpoSettings,
    TrainingCancelled,
    TrainingInputError,
    TrainSettings,
    adapter_base_dir,
    train_dpo,
    train_grpo,
    train_sft,
)

pytestmark = pytest.mark.slow

ROWS = [{"prompt": f"Give {i} as JSON.", "completion": json.dumps({"value": i})} for i in range(4)]
TINY = {"max_steps": 2, "batch_size": 2, "max_length": 64, "lora": {"r": 4, "alpha": 8}}


def test_sft_saves_an_adapter_and_reports_progress(base_model_dir: Path, tmp_path: Path) -> None:
    metrics: list[tuple[int, dict]] = []
    progress: list[float] = []
    out = tmp_path / "sft"
    result = train_sft(
        base_model_dir,
        ROWS,
        out,
        TrainSettings(**TINY),
        on_metrics=lambda step, values: metrics.append((step, values)),
        on_progress=lambda fraction, message: progress.append(fraction),
        manifest={"dataset": "numbers"},
    )
    assert result.steps == 2 and result.adapter and result.train_tokens > 0
    # The adapter only, naming the base where it lives (never a copy of the base weights).
    files = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "training.json"} <= files
    assert "model.safetensors" not in files
    assert adapter_base_dir(out) == base_model_dir
    manifest = json.loads((out / "training.json").read_text())
    assert manifest["method"] == "sft" and manifest["rows"] == 4 and manifest["dataset"] == "numbers"
    assert [step for step, _ in metrics] == [1, 2]
    assert all("loss" in values for _, values in metrics)
    assert "tokens_per_second" in metrics[-1][1] and metrics[-1][1]["tokens_per_second"] > 0
    assert progress[0] == 0.0 and progress[-1] == 1.0
    # Training continues an adapter: the result still names the original base.
    again = train_sft(out, ROWS, tmp_path / "sft2", TrainSettings(**{**TINY, "max_steps": 1}))
    assert again.adapter and adapter_base_dir(tmp_path / "sft2") == base_model_dir


def test_cancelled_training_saves_nothing(base_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cancelled"
    with pytest.raises(TrainingCancelled, match="sft cancelled at step 1"):
        train_sft(base_model_dir, ROWS, out, TrainSettings(**{**TINY, "max_steps": 50}), should_stop=lambda: True)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cancelled")]


def test_bad_input_fails_before_loading(tmp_path: Path) -> None:
    with pytest.raises(TrainingInputError, match="row 0 is a preference pair"):
        train_sft(tmp_path / "no-model", [{"prompt": "q", "chosen": "a", "rejected": "b"}], tmp_path / "o")
    with pytest.raises(TrainingInputError, match="model folder not found"):
        train_sft(tmp_path / "no-model", ROWS, tmp_path / "o")
    with pytest.raises(TrainingInputError, match="batch_size \\(3\\) must be a multiple of num_generations \\(2\\)"):
        train_grpo(
            tmp_path / "no-model",
            ROWS,
            lambda p, c, r: [0.0] * len(c),
            tmp_path / "o",
            TrainSettings(batch_size=3),
            GrpoSettings(num_generations=2),
        )


def test_dpo_learns_the_preferred_side(base_model_dir: Path, tmp_path: Path) -> None:
    pairs = [{"prompt": r["prompt"], "chosen": r["completion"], "rejected": "I cannot do that."} for r in ROWS]
    metrics: list[dict] = []
    result = train_dpo(
        base_model_dir,
        pairs,
        tmp_path / "dpo",
        TrainSettings(**{**TINY, "learning_rate": 1e-3}),
        on_metrics=lambda step, values: metrics.append(values),
    )
    assert result.steps == 2 and (tmp_path / "dpo" / "adapter_config.json").is_file()
    assert "rewards/margins" in metrics[-1] and metrics[-1]["rewards/margins"] > 0


def test_grpo_scores_groups_with_the_reward_function(base_model_dir: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, dict]] = []

    def reward(prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
        seen.extend((len(c), row) for c, row in zip(completions, rows, strict=True))
        return [float(len(c) % 3) for c in completions]

    metrics: list[dict] = []
    rows = [{"prompt": r["prompt"], "value": i} for i, r in enumerate(ROWS)]
    result = train_grpo(
        base_model_dir,
        rows,
        reward,
        tmp_path / "grpo",
        TrainSettings(**{**TINY, "max_steps": 1, "batch_size": 4}),
        GrpoSettings(num_generations=2, max_completion_length=8),
        on_metrics=lambda step, values: metrics.append(values),
    )
    assert result.steps == 1 and (tmp_path / "grpo" / "adapter_config.json").is_file()
    # Each prompt was sampled twice, and the reward saw each row's own fields.
    assert len(seen) == 4 and {row["value"] for _, row in seen} <= {0, 1, 2, 3}
    assert "reward" in metrics[-1]


def test_grpo_one_round_of_sampling_serves_several_steps(base_model_dir: Path, tmp_path: Path) -> None:
    calls: list[int] = []

    def reward(prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
        calls.append(len(completions))
        return [float(len(c) % 3) for c in completions]

    metrics: list[dict] = []
    rows = [{"prompt": r["prompt"]} for r in ROWS]
    result = train_grpo(
        base_model_dir,
        rows,
        reward,
        tmp_path / "grpo",
        TrainSettings(**{**TINY, "max_steps": 2, "batch_size": 2}),
        GrpoSettings(num_generations=2, max_completion_length=4, steps_per_generation=2),
        on_metrics=lambda step, values: metrics.append(values),
    )
    assert result.steps == 2
    assert calls == [4]  # one batch of 2 steps' completions, scored once, not two batches of 2
    # The second step learns from the first step's samples and measures no reward; the result (and the
    # saved manifest) keep the last reward measured.
    assert len(metrics) == 2 and "reward" in metrics[0] and "reward" not in metrics[1]
    assert result.metrics["reward"] == metrics[0]["reward"] and result.metrics["loss"] == metrics[1]["loss"]
    assert json.loads((tmp_path / "grpo" / "training.json").read_text())["metrics"]["reward"] == metrics[0]["reward"]


def test_sft_and_dpo_train_on_tool_conversations(base_model_dir: Path, tmp_path: Path) -> None:
    """Conversations with tool calls, as the gateway logs them, train on a model whose template renders tools;
    a model whose template has none refuses them before any step."""
    from tests.inference.fixtures import with_tool_template

    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
            },
        }
    ]
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "UTC"}'}}
        ],
    }
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What time is it? ({i})"},
                call,
                {"role": "tool", "tool_call_id": "c1", "content": "noon"},
                {"role": "assistant", "content": "It is noon."},
            ],
            "tools": tools,
        }
        for i in range(2)
    ]
    rows += [{"prompt": f"Time in UTC? ({i})", "completion": call, "tools": tools} for i in range(2)]
    with pytest.raises(TrainingInputError, match="row 0 holds tool calls or tools, but the chat template"):
        train_sft(base_model_dir, rows, tmp_path / "plain", TrainSettings(**TINY))
    model = with_tool_template(base_model_dir, tmp_path / "tool-model")
    result = train_sft(model, rows, tmp_path / "sft", TrainSettings(**{**TINY, "max_length": 256}))
    assert result.steps == 2 and result.train_tokens > 0
    pairs = [
        {"prompt": f"Time in UTC? ({i})", "chosen": call, "rejected": "I cannot tell.", "tools": tools}
        for i in range(2)
    ]
    result = train_dpo(model, pairs, tmp_path / "dpo", TrainSettings(**{**TINY, "max_length": 256}))
    assert result.steps == 2


def _bundled_gguf() -> Path:
    from adaptive_engine.models_bundled import bundled_chat_gguf

    folder, name = bundled_chat_gguf()
    return folder / name


def test_llamacpp_sampling_honours_seeds_n_stop_and_the_adapter(base_model_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptive_engine.recipe.training.llamacpp_sampling import LlamaCppSampler

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    prompts = [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": r["prompt"]}], add_generation_prompt=True, return_dict=True
            )["input_ids"]
        )
        for r in ROWS[:2]
    ]
    newline = tokenizer.encode("\n")[-1]
    stops = [tokenizer.eos_token_id, newline]
    sampler = LlamaCppSampler(_bundled_gguf())

    def sample(seed: int, n: int = 3) -> list[list[int]]:
        batch = [p for p in prompts for _ in range(n)]
        generator = torch.Generator().manual_seed(seed)
        return sampler.sample(batch, temperature=1.0, top_p=0.95, max_tokens=12, stop_ids=stops, generator=generator)

    try:
        first = sample(7)
        assert len(first) == 6  # n completions of each prompt, in the prompts' order
        assert first == sample(7) and first != sample(8)  # the seed decides the samples
        for ids in first:
            assert 1 <= len(ids) <= 12
            assert not set(ids[:-1]) & set(stops)  # a completion ends at its first stop token...
            assert ids[-1] in stops or len(ids) == 12  # ...or at max_tokens
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(base_model_dir),
            LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
        sampler.set_adapter(model.peft_config["default"].to_dict(), get_peft_model_state_dict(model))
        assert sample(7) != first  # the same seed on the adapter's weights samples other completions
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.zero_()
        sampler.set_adapter(model.peft_config["default"].to_dict(), get_peft_model_state_dict(model))
        assert sample(7) == first  # a zero update is the base again: the old adapter is gone
    finally:
        sampler.close()


def test_grpo_samples_through_llamacpp_with_the_seed_and_falls_back_with_a_reason(
    base_model_dir: Path, tmp_path: Path
) -> None:
    def run(name: str, gguf: Path | None) -> tuple[list[str], list[str], dict]:
        seen: list[str] = []
        logs: list[str] = []

        def reward(prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
            seen.extend(completions)
            return [float(len(c) % 3) for c in completions]

        train_grpo(
            base_model_dir,
            [{"prompt": r["prompt"]} for r in ROWS],
            reward,
            tmp_path / name,
            TrainSettings(**{**TINY, "max_steps": 2, "batch_size": 4, "seed": 3}),
            GrpoSettings(num_generations=2, max_completion_length=8, temperature=1.0),
            gguf_base=gguf,
            on_log=logs.append,
        )
        return seen, logs, json.loads((tmp_path / name / "training.json").read_text())

    seen, logs, manifest = run("fast", _bundled_gguf())
    assert logs == ["grpo: sampling with llama.cpp"] and manifest["sampling"] == "llama.cpp"
    assert len(seen) == 8  # 2 steps x 2 prompts x 2 completions
    again, _, _ = run("fast-again", _bundled_gguf())
    assert again == seen  # the run's seed decides the samples (step 2 samples from step 1's adapter)
    _, logs, manifest = run("slow", None)
    assert logs == ["grpo: sampling with TRL's generate: the base model is not a GGUF file"]
    assert manifest["sampling"] == "transformers"
