"""Agreement of the bundled-model binary judge with labels, with and without constrained decoding.

    python bench/judge_agreement.py [--data-dir DIR] [--model-dir FOLDER] [--samples 8] [--criteria capital polite]
                                    [--concurrency 8] [--show]

The script builds labelled sets of clear cases for two simple criteria, half PASS and half FAIL:
"capital" (the answer names the right capital city of the country asked about, or a wrong one: needs
knowledge) and "polite" (a courteous answer or an insulting one: a surface property). It loads the bundled
chat model (SmolLM2-135M-Instruct) through the local backend of the inference layer (the GGUF file is converted
once and cached under the shared model cache, or ``DATA_DIR/models``; ``--model-dir`` points at an already
converted Hugging Face folder instead), and runs the judge exactly as the server does (graders/grading.py ->
judges.run_binary_judge) twice:

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

CRITERIA = {
    "capital": "The answer names the correct capital city of the country in the question.",
    "polite": "The answer is polite and respectful to the user.",
}
CAPITALS = [
    ("France", "Paris", "Berlin"),
    ("Germany", "Berlin", "Madrid"),
    ("Italy", "Rome", "Lisbon"),
    ("Spain", "Madrid", "Paris"),
    ("Japan", "Tokyo", "Beijing"),
    ("Egypt", "Cairo", "Nairobi"),
    ("Canada", "Ottawa", "Sydney"),
    ("Russia", "Moscow", "Warsaw"),
    ("China", "Beijing", "Tokyo"),
    ("England", "London", "Dublin"),
    ("Greece", "Athens", "Rome"),
    ("Portugal", "Lisbon", "Vienna"),
    ("Ireland", "Dublin", "London"),
    ("Austria", "Vienna", "Prague"),
    ("Poland", "Warsaw", "Moscow"),
    ("Kenya", "Nairobi", "Cairo"),
]


POLITE = [
    (
        "Can you help me reset my password?",
        "Of course, happy to help! Click 'Forgot password' on the login page.",
        "Figure it out yourself, I am not your babysitter.",
    ),
    (
        "Where is my order?",
        "Thank you for your patience. Your order ships tomorrow.",
        "Stop bothering me about your stupid order.",
    ),
    (
        "Can I change my delivery address?",
        "Certainly! You can change it in your account settings.",
        "No. Read the manual instead of wasting my time, idiot.",
    ),
    (
        "Do you open on Sundays?",
        "Yes, we are glad to welcome you from 10am to 4pm on Sundays.",
        "Obviously not, what a dumb question.",
    ),
    (
        "How do I cancel my subscription?",
        "I am sorry to see you go. You can cancel it under Billing.",
        "Whatever, cancel it, nobody cares about you.",
    ),
    ("Is this jacket waterproof?", "Great question! Yes, it is fully waterproof.", "Can you not read the label? Ugh."),
    ("Can I pay by card?", "Absolutely, we accept all major cards. Thank you!", "Shut up and pay however you want."),
    (
        "Do you ship abroad?",
        "We do! We ship to most countries, and we are happy to help with customs questions.",
        "Go away, you are annoying me.",
    ),
]


def labelled_set(criterion: str, n: int) -> list[tuple[Sample, str]]:
    """Clear cases, alternating PASS and FAIL."""
    rows: list[tuple[Sample, str]] = []
    if criterion == "capital":
        for country, right, wrong in CAPITALS:
            question = [{"role": "user", "content": f"What is the capital of {country}?"}]
            rows.append((Sample(messages=question, completion=f"The capital of {country} is {right}."), "PASS"))
            rows.append((Sample(messages=question, completion=f"The capital of {country} is {wrong}."), "FAIL"))
    else:
        for question, polite, rude in POLITE:
            messages = [{"role": "user", "content": question}]
            rows.append((Sample(messages=messages, completion=polite), "PASS"))
            rows.append((Sample(messages=messages, completion=rude), "FAIL"))
    return rows[:n]


class BackendGenerator:
    """judges.TextGenerator straight over one loaded backend (the server goes through its manager)."""

    def __init__(self, backend) -> None:
        self.backend = backend

    async def __call__(self, model_key, messages, *, max_tokens, constraint=None):
        from adaptive_engine.server.inference.backends import base

        params = base.GenerationParams(max_tokens=max_tokens, temperature=0.0)
        if constraint is not None:
            params.constraint = constraint
        request = base.GenerationRequest(
            messages=[base.ChatMessage(m["role"], m["content"]) for m in messages], params=params
        )
        result = await self.backend.generate(request)
        return result.choices[0].text


async def run(args: argparse.Namespace) -> None:
    from adaptive_engine import models_bundled
    from adaptive_engine.server.inference.backends.local import LocalChatBackend, LocalModelSpec, bundled_chat_spec

    if args.model_dir:
        spec = LocalModelSpec(path=args.model_dir)
    else:
        root = Path(args.data_dir) / "models" if args.data_dir else models_bundled.default_cache_root()
        spec = bundled_chat_spec(str(root / models_bundled.BUNDLED_CHAT_KEY))
    backend = LocalChatBackend(spec, max_batch_rows=args.concurrency)
    started = time.perf_counter()
    await backend.load()
    print(f"model loaded in {time.perf_counter() - started:.1f}s")
    generator = BackendGenerator(backend)
    speeds: dict[bool, list[float]] = {False: [0.0, 0.0], True: [0.0, 0.0]}  # samples, seconds
    for criterion in args.criteria:
        data = labelled_set(criterion, args.samples)
        grader = GraderSpec(
            id=None,
            key="bench",
            use_case_id=None,
            grader_type="JUDGE",  # type: ignore[arg-type]
            config={"criteria": CRITERIA[criterion], "examples": []},
            metric_id=None,
            metric_key="bench",
            model_key="smollm2-135m-instruct",
        )  # type: ignore[arg-type]
        print(
            f"\n[{criterion}] {len(data)} samples ({sum(1 for _, label in data if label == 'PASS')} PASS / "
            f"{sum(1 for _, label in data if label == 'FAIL')} FAIL), criterion: {CRITERIA[criterion]!r}"
        )
        for constrained in (False, True):
            service = GradingService(lambda: generator, judge_concurrency=args.concurrency, constrained=constrained)
            t0 = time.perf_counter()
            outcomes = await service.grade(grader, [s for s, _ in data])
            elapsed = time.perf_counter() - t0
            verdicts = []
            for outcome in outcomes:
                if outcome.error is not None:
                    verdicts.append(None)
                else:
                    verdicts.append(next(v for v, score in VERDICT_SCORES.items() if score == outcome.score))
            valid = [v for v in verdicts if v is not None]
            agree = sum(1 for v, (_, label) in zip(verdicts, data, strict=True) if v == label)
            speeds[constrained][0] += len(data)
            speeds[constrained][1] += elapsed
            name = "constrained  " if constrained else "unconstrained"
            print(
                f"{name}: valid {len(valid)}/{len(data)}  agreement {agree / len(data):.1%}  "
                f"agreement among valid {agree / max(1, len(valid)):.1%}  "
                f"PASS share {sum(1 for v in valid if v == 'PASS') / max(1, len(valid)):.1%}  "
                f"{len(data) / elapsed:.2f} samples/s ({elapsed:.1f}s)"
            )
            if args.show:
                for outcome, (sample, label) in zip(outcomes, data, strict=True):
                    print(
                        f"   [{label}] {sample.completion!r} -> {outcome.score} {outcome.error or outcome.reasoning!r}"[
                            :200
                        ]
                    )
    rate = {c: n / t for c, (n, t) in speeds.items()}
    print(
        f"\nsamples/s overall: unconstrained {rate[False]:.3f}, constrained {rate[True]:.3f} "
        f"(ratio constrained / unconstrained {rate[True] / rate[False]:.2f}x)"
    )
    await backend.unload()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=None, help="cache the converted model under DIR/models (default: the shared model cache)"
    )
    parser.add_argument("--model-dir", default=None, help="an already converted Hugging Face folder")
    parser.add_argument("--samples", type=int, default=8, help="samples per criterion (half PASS, half FAIL)")
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=list(CRITERIA))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--show", action="store_true", help="print every verdict")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
