"""Agreement of the bundled-model binary judge with labels, with and without constrained decoding.

    python bench/judge_agreement.py [--data-dir DIR] [--model-dir FOLDER] [--samples 24] [--concurrency 8]

The script builds a labelled set of clear cases for one simple criterion ("the answer names the correct
capital city of the country asked about"): for each country, one answer with the right capital (label
PASS) and one with a wrong capital (label FAIL). It loads the bundled chat model (SmolLM2-135M-Instruct)
through the local backend of the inference layer (the GGUF file is converted once and cached under
the shared model cache, or ``DATA_DIR/models``; ``--model-dir`` points at an already converted Hugging Face folder instead), and
runs the judge exactly as the server does (graders/grading.py -> judges.run_binary_judge) twice:

- unconstrained: free greedy decoding, the answer parsed leniently;
- constrained: decoding held to the verdict schema (inference/constraints.py).

Printed for each: valid verdicts, agreement with the labels (an invalid answer counts as a disagreement),
agreement among valid verdicts, the share of PASS verdicts (a judge that always says PASS agrees 50%),
and samples/s (all samples submitted at once; the local backend batches them). The ratio of the two
speeds is printed too. No target yet: the figures go in the grader notes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adaptive_engine.server.domains.graders.grading import GraderSpec, GradingService  # noqa: E402
from adaptive_engine.server.domains.graders.judges import VERDICT_SCORES  # noqa: E402
from adaptive_engine.server.domains.graders.schemas import Sample  # noqa: E402

CRITERION = "The answer names the correct capital city of the country in the question."
CAPITALS = [
    ("France", "Paris", "Berlin"), ("Germany", "Berlin", "Madrid"), ("Italy", "Rome", "Lisbon"),
    ("Spain", "Madrid", "Paris"), ("Japan", "Tokyo", "Beijing"), ("Egypt", "Cairo", "Nairobi"),
    ("Canada", "Ottawa", "Sydney"), ("Russia", "Moscow", "Warsaw"), ("China", "Beijing", "Tokyo"),
    ("England", "London", "Dublin"), ("Greece", "Athens", "Rome"), ("Portugal", "Lisbon", "Vienna"),
    ("Ireland", "Dublin", "London"), ("Austria", "Vienna", "Prague"), ("Poland", "Warsaw", "Moscow"),
    ("Kenya", "Nairobi", "Cairo"),
]


def labelled_set(n: int) -> list[tuple[Sample, str]]:
    rows: list[tuple[Sample, str]] = []
    for country, right, wrong in CAPITALS:
        question = [{"role": "user", "content": f"What is the capital of {country}?"}]
        rows.append((Sample(messages=question, completion=f"The capital of {country} is {right}."), "PASS"))
        rows.append((Sample(messages=question, completion=f"The capital of {country} is {wrong}."), "FAIL"))
    return rows[:n]


class BackendGenerator:
    """judges.TextGenerator straight over one loaded backend (the server goes through its manager)."""

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend

    async def __call__(self, model_key, messages, *, max_tokens, constraint=None):  # noqa: ANN001, ANN201
        from adaptive_engine.server.inference.backends import base

        params = base.GenerationParams(max_tokens=max_tokens, temperature=0.0)
        if constraint is not None:
            params.constraint = constraint
        request = base.GenerationRequest(messages=[base.ChatMessage(m["role"], m["content"]) for m in messages],
                                         params=params)
        result = await self.backend.generate(request)
        return result.choices[0].text


async def run(args: argparse.Namespace) -> None:
    from adaptive_engine.server.inference.backends.local import LocalChatBackend, LocalModelSpec, bundled_chat_spec

    from adaptive_engine import models_bundled

    if args.model_dir:
        spec = LocalModelSpec(path=args.model_dir)
    else:
        root = Path(args.data_dir) / "models" if args.data_dir else models_bundled.default_cache_root()
        spec = bundled_chat_spec(str(root / models_bundled.BUNDLED_CHAT_KEY))
    backend = LocalChatBackend(spec, max_batch_rows=args.concurrency)
    started = time.perf_counter()
    await backend.load()
    print(f"model loaded in {time.perf_counter() - started:.1f}s")
    data = labelled_set(args.samples)
    spec_ = GraderSpec(id=None, key="bench", use_case_id=None, grader_type="JUDGE",  # type: ignore[arg-type]
                       config={"criteria": CRITERION, "examples": []}, metric_id=None,  # type: ignore[arg-type]
                       metric_key="bench", model_key="smollm2-135m-instruct")
    generator = BackendGenerator(backend)
    speeds = {}
    print(f"{len(data)} samples ({sum(1 for _, l in data if l == 'PASS')} PASS / "
          f"{sum(1 for _, l in data if l == 'FAIL')} FAIL), criterion: {CRITERION!r}")
    for constrained in (False, True):
        service = GradingService(lambda: generator, judge_concurrency=args.concurrency, constrained=constrained)
        t0 = time.perf_counter()
        outcomes = await service.grade(spec_, [s for s, _ in data])
        elapsed = time.perf_counter() - t0
        verdicts = []
        for outcome in outcomes:
            if outcome.error is not None:
                verdicts.append(None)
            else:
                verdicts.append(next(v for v, score in VERDICT_SCORES.items() if score == outcome.score))
        valid = [v for v in verdicts if v is not None]
        agree = sum(1 for v, (_, label) in zip(verdicts, data, strict=True) if v == label)
        agree_valid = sum(1 for v, (_, label) in zip(verdicts, data, strict=True) if v is not None and v == label)
        speeds[constrained] = len(data) / elapsed
        name = "constrained  " if constrained else "unconstrained"
        print(f"{name}: valid {len(valid)}/{len(data)}  agreement {agree / len(data):.1%}  "
              f"agreement among valid {agree_valid / max(1, len(valid)):.1%}  "
              f"PASS share {sum(1 for v in valid if v == 'PASS') / max(1, len(valid)):.1%}  "
              f"{speeds[constrained]:.2f} samples/s ({elapsed:.1f}s)")
        if args.show:
            for outcome, (sample, label) in zip(outcomes, data, strict=True):
                print(f"   [{label}] {sample.completion!r} -> {outcome.score} {outcome.error or outcome.reasoning!r}"[:200])
    print(f"speed ratio constrained / unconstrained: {speeds[True] / speeds[False]:.2f}x")
    await backend.unload()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="cache the converted model under DIR/models (default: the shared model cache)")
    parser.add_argument("--model-dir", default=None, help="an already converted Hugging Face folder")
    parser.add_argument("--samples", type=int, default=2 * len(CAPITALS))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--show", action="store_true", help="print every verdict")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
