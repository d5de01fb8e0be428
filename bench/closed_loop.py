"""The closed loop, learning from feedback alone, driven through the SDK against a real server.

    python bench/closed_loop.py [--task city|lookup|sort|price] [--probe] [--noise 0.2] [--laps 2]
        [--signal feedback|preferences] [--smoke] [--train-prompts 32] [--samples 8] [--heldout 16] ...

Tasks (``--task``), each checked by a programmatic verifier registered as a custom grader, held-out prompts
disjoint from the training ones, no gold completions anywhere:
 - ``city`` (default, the quick one): a sentence names where someone lives; reply with only
   ``{"city": "<city>"}``. Mostly a format: the bundled SmolLM2-135M adds prose, code fences, other keys.
 - ``lookup``: three people and their cities, one asked; the same JSON, but the value must be the asked
   person's city, not another record's (a right answer, not only a well-formed one).
 - ``sort`` (four numbers as a sorted JSON list), ``price`` (a price list, one fruit asked): kept for
   ``--probe``; the base model almost never solves them when sampling, so feedback has no signal.
``--probe`` only measures the base model's pass rate, sampled and greedy, to pick a task with signal.

Stages of a lap (each timed):
 1. start ``adaptive-engine serve`` (bundled models, built-in recipes) on a free port, deploy the model;
 2. serve sampled traffic on the training prompts from the use case's default model (stored as interactions);
 3. the verifier judges every logged completion and its verdict is stored as feedback (one grading call per
    100); with ``--noise`` a share of the stored values is flipped (people are wrong sometimes);
 4. ``sft`` job on the interactions passing the threshold; ``dpo`` job on pass/fail pairs of the same prompt
    (``--dpo-min-margin``: pooled identical completions, clear margins only; ``--sft-min-copies``: sft keeps only
    completions logged that many times whose pooled score passes); ``grpo`` job with the verifier
    as reward; each trains from the lap's start model;
 5. one ``eval`` job: the start and the tuned models on held-out prompts (sampled, ``--eval-samples`` per
    prompt, judged by the verifier itself, never by the noisy people);
 6. A/B test start vs the best tuned model with auto-deploy, on simulated traffic judged as it comes;
    the winner becomes the use case's default and the next lap's start (``--laps``).
With ``--signal preferences`` the laps after the first learn from people's preferences only: a preference
A/B test between the current and the previous model, both answering each training prompt, the verifier
picking (ties when both pass or both fail), the duels made a PREFERENCE dataset in one call, ``dpo`` on it.
Printed: per lap and recipe the held-out pass rate of the start and of the tuned model, the gain in points
and the recipe's own stages (train, eval); the shared stages; the total; the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from server_process import ServerProcess  # noqa: E402

from adaptive_engine import Adaptive  # noqa: E402
from adaptive_engine.models_bundled import BUNDLED_CHAT_KEY, default_cache_root  # noqa: E402

NAMES = [
    "Alice",
    "Bob",
    "Carla",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lena",
    "Marco",
    "Nadia",
    "Omar",
    "Paula",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
CITIES = [
    "Paris",
    "London",
    "Tokyo",
    "Madrid",
    "Berlin",
    "Rome",
    "Cairo",
    "Lima",
    "Oslo",
    "Dublin",
    "Vienna",
    "Prague",
    "Lisbon",
    "Athens",
    "Seoul",
    "Nairobi",
]
JOBS = ["nurse", "teacher", "pilot", "chef", "lawyer", "farmer", "baker", "writer", "painter", "doctor"]
FRUITS = ["apple", "pear", "plum", "fig", "lime", "peach", "mango", "kiwi", "grape", "melon", "cherry", "lemon"]


@dataclass(frozen=True)
class Task:
    """A task of the loop: its prompts (held-out ones disjoint from training) and the programmatic verifier,
    registered on the server as a custom grader. ``answer`` gives a right completion: the smoke run logs it
    to make sure some traffic passes; no training stage ever sees it."""

    key: str
    feedback_key: str
    grader_key: str
    grader_code: str
    make_prompts: Callable[[int, int, int], tuple[list[str], list[str]]]
    answer: Callable[[str], str]


CITY_GRADER = r"""
import json, re

def grade(messages, completion, metadata):
    found = re.search(r"lives in ([A-Z][a-z]+)\.", messages[-1]["content"])
    try:
        value = json.loads(completion.strip())
    except ValueError:
        return {"score": False, "reasoning": "not a JSON object"}
    if value == {"city": found.group(1)}:
        return {"score": True, "reasoning": "right shape and value"}
    return {"score": False, "reasoning": "wrong shape or value"}
"""


def city_prompt(name: str, job: str, city: str) -> str:
    return (
        f"{name} is a {job} who lives in {city}. Reply with only a JSON object of the form "
        f'{{"city": "<city>"}} giving the city where {name} lives.'
    )


def city_prompts(n_train: int, n_heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Held-out prompts use names and cities never seen in training prompts."""
    rng = random.Random(seed)
    train_names, held_names = NAMES[:14], NAMES[14:]
    train_cities, held_cities = CITIES[:11], CITIES[11:]
    train = [city_prompt(rng.choice(train_names), rng.choice(JOBS), rng.choice(train_cities)) for _ in range(n_train)]
    held = [city_prompt(rng.choice(held_names), rng.choice(JOBS), rng.choice(held_cities)) for _ in range(n_heldout)]
    return train, held


SORT_GRADER = r"""
import json, re

def grade(messages, completion, metadata):
    found = re.search(r"Numbers: ([0-9, ]+)\.", messages[-1]["content"])
    wanted = sorted(int(x) for x in found.group(1).split(","))
    try:
        value = json.loads(completion.strip())
    except ValueError:
        return {"score": False, "reasoning": "not JSON"}
    if value == wanted:
        return {"score": True, "reasoning": "sorted"}
    if isinstance(value, list) and sorted(value) == wanted:
        return {"score": False, "reasoning": "the right numbers in the wrong order"}
    return {"score": False, "reasoning": "not the given numbers as a list"}
"""


def sort_prompt(numbers: tuple[int, ...]) -> str:
    listed = ", ".join(str(n) for n in numbers)
    return f"Numbers: {listed}. Reply with only a JSON list of these numbers sorted from smallest to largest."


def sort_prompts(n_train: int, n_heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Four distinct numbers from 1-49, shown unsorted; no held-out set of numbers appears in training."""
    rng = random.Random(seed)

    def draw(taken: set[frozenset[int]]) -> tuple[int, ...]:
        while True:
            numbers = tuple(rng.sample(range(1, 50), 4))
            if frozenset(numbers) not in taken and list(numbers) != sorted(numbers):
                taken.add(frozenset(numbers))
                return numbers

    seen: set[frozenset[int]] = set()
    train = [sort_prompt(draw(seen)) for _ in range(n_train)]
    held = [sort_prompt(draw(seen)) for _ in range(n_heldout)]
    return train, held


def sort_answer(text: str) -> str:
    listed = text.split("Numbers: ", 1)[1].split(".", 1)[0]
    return json.dumps(sorted(int(x) for x in listed.split(",")))


PRICE_GRADER = r"""
import json, re

def grade(messages, completion, metadata):
    text = messages[-1]["content"]
    prices = dict((f, int(p)) for f, p in re.findall(r"([a-z]+) costs ([0-9]+)", text))
    asked = re.search(r"price of the ([a-z]+)", text).group(1)
    try:
        value = json.loads(completion.strip())
    except ValueError:
        return {"score": False, "reasoning": "not JSON"}
    if value == {"price": prices[asked]}:
        return {"score": True, "reasoning": "the asked fruit's price"}
    return {"score": False, "reasoning": "wrong shape or price"}
"""


def price_prompt(table: list[tuple[str, int]], asked: str) -> str:
    listed = "; ".join(f"a {fruit} costs {price}" for fruit, price in table)
    return (
        f"Price list: {listed}. Reply with only a JSON object of the form "
        f'{{"price": <number>}} giving the price of the {asked}.'
    )


def price_prompts(n_train: int, n_heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Four fruits with prices 2-19, one asked; held-out tables use fruits never seen in training."""
    rng = random.Random(seed)

    def one(fruits: list[str]) -> str:
        table = [(fruit, rng.randint(2, 19)) for fruit in rng.sample(fruits, 4)]
        return price_prompt(table, rng.choice(table)[0])

    return [one(FRUITS[:8]) for _ in range(n_train)], [one(FRUITS[8:]) for _ in range(n_heldout)]


def price_answer(text: str) -> str:
    import re

    asked = re.search(r"price of the ([a-z]+)", text).group(1)  # type: ignore[union-attr]
    return json.dumps({"price": int(re.search(rf"{asked} costs ([0-9]+)", text).group(1))})  # type: ignore[union-attr]


LOOKUP_GRADER = r"""
import json, re

def grade(messages, completion, metadata):
    text = messages[-1]["content"]
    homes = dict(re.findall(r"([A-Z][a-z]+) lives in ([A-Z][a-z]+)\.", text))
    asked = re.search(r"the city where ([A-Z][a-z]+) lives", text).group(1)
    try:
        value = json.loads(completion.strip())
    except ValueError:
        return {"score": False, "reasoning": "not a JSON object"}
    if value == {"city": homes[asked]}:
        return {"score": True, "reasoning": "the asked person's city"}
    if isinstance(value, dict) and value.get("city") in homes.values():
        return {"score": False, "reasoning": "another person's city"}
    return {"score": False, "reasoning": "wrong shape or value"}
"""


def lookup_prompt(records: list[tuple[str, str]], asked: str) -> str:
    listed = " ".join(f"{name} lives in {city}." for name, city in records)
    return (
        f'{listed} Reply with only a JSON object of the form {{"city": "<city>"}} giving the city where {asked} lives.'
    )


def lookup_prompts(n_train: int, n_heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Three people and their cities, one asked (not always the first or the last); held-out prompts use names
    and cities never seen in training prompts."""
    rng = random.Random(seed)

    def one(names: list[str], cities: list[str]) -> str:
        records = list(zip(rng.sample(names, 3), rng.sample(cities, 3), strict=True))
        return lookup_prompt(records, rng.choice(records)[0])

    train = [one(NAMES[:14], CITIES[:11]) for _ in range(n_train)]
    return train, [one(NAMES[14:], CITIES[11:]) for _ in range(n_heldout)]


def lookup_answer(text: str) -> str:
    import re

    asked = re.search(r"the city where ([A-Z][a-z]+) lives", text).group(1)  # type: ignore[union-attr]
    return json.dumps({"city": re.search(rf"{asked} lives in ([A-Z][a-z]+)\.", text).group(1)})  # type: ignore[union-attr]


TASKS = {
    "city": Task(
        "city",
        "city_ok",
        "city-json",
        CITY_GRADER,
        city_prompts,
        lambda text: json.dumps({"city": text.split(" lives in ", 1)[1].split(".", 1)[0]}),
    ),
    "sort": Task("sort", "sorted_ok", "sorted-list", SORT_GRADER, sort_prompts, sort_answer),
    "lookup": Task("lookup", "lookup_ok", "lookup-city", LOOKUP_GRADER, lookup_prompts, lookup_answer),
    "price": Task("price", "price_ok", "price-lookup", PRICE_GRADER, price_prompts, price_answer),
}


class Timer:
    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, name: str):  # noqa: ANN201
        print(f"-- {name} ...", flush=True)
        t = time.perf_counter()
        yield
        self.stages.append((name, time.perf_counter() - t))
        print(f"   {name}: {self.stages[-1][1]:.1f} s", flush=True)


@contextmanager
def server(data_dir: Path, ab_min: int, engine: str):  # noqa: ANN201
    key = "closed-loop-admin-key"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "ADAPTIVE_MODEL_CACHE_DIR": str(default_cache_root()),
        "ADAPTIVE_LOCAL_ENGINE": engine,
        "ADAPTIVE_AB_TEST_MIN_OBSERVATIONS": str(ab_min),
        "ADAPTIVE_AB_TEST_EVALUATION_INTERVAL_S": "1",
    }
    with ServerProcess(data_dir, key, env=env, log_path=data_dir / "server.log") as running:
        yield running.url, key


def wait_job(client: Adaptive, job_id: str, limit_s: float = 3600) -> Any:
    deadline = time.monotonic() + limit_s
    last = None
    while True:
        job = client.jobs.get(job_id)
        if job.status in ("COMPLETED", "FAILED", "CANCELED"):
            if job.status != "COMPLETED":
                raise RuntimeError(f"job {job.name or job.id} {job.status}: {job.error}")
            return job
        if job.progress_message and job.progress_message != last:
            last = job.progress_message
            print(f"   [{job.status.lower()}] {last}", flush=True)
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job.status} after {limit_s}s")
        time.sleep(1.0)


def run_job(client: Adaptive, recipe: str, args: dict[str, Any], name: str) -> Any:
    return wait_job(client, client.jobs.run(recipe, num_gpus=0, args=args, name=name).id)


def eval_report(client: Adaptive, job: Any) -> dict[str, Any]:
    artifact = next(a for a in job.details.artifacts if a.kind == "EVALUATION")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluation.json"
        client.artifacts.download(artifact.id, str(path))
        return json.loads(path.read_text())


def serve(
    client: Adaptive,
    prompts: list[str],
    samples: int,
    temperature: float,
    max_tokens: int,
    concurrency: int,
    ab_campaign: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Sampled chat traffic, stored by the platform as interactions: one sample dict per completion."""

    def one(text: str) -> list[dict[str, Any]]:
        messages = [{"role": "user", "content": text}]
        response = client.chat.create(
            messages=messages,
            n=samples,
            temperature=temperature,
            max_tokens=max_tokens,
            ab_campaign=ab_campaign,
            model=model,
        )
        return [
            {"messages": messages, "completion": c.message.content, "completion_id": c.completion_id}
            for c in response.choices
        ]

    with ThreadPoolExecutor(concurrency) as pool:
        return [sample for samples_ in pool.map(one, prompts) for sample in samples_]


class Feedback:
    """The people of the loop: the task's verifier judges, and with ``noise`` a share of what they log is wrong
    (a pass logged as a fail and the other way round; a duel's pick reversed). Scores returned are the
    verifier's own; what the platform stores is what the people said."""

    def __init__(self, client: Adaptive, task: Task, noise: float, seed: int) -> None:
        self.client, self.task, self.noise = client, task, noise
        self.rng = random.Random(seed)
        self.logged: list[float] = []

    def verify(self, samples: list[dict[str, Any]], store: bool = False, batch: int = 100) -> list[float]:
        """The verifier's scores; with ``store`` the platform writes them as feedback on the completions."""
        if not store:
            samples = [{k: v for k, v in s.items() if k != "completion_id"} for s in samples]
        chunks = [samples[i : i + batch] for i in range(0, len(samples), batch)]
        with ThreadPoolExecutor(2) as pool:
            results = pool.map(
                lambda chunk: self.client.graders.grade_batch(grader_key=self.task.grader_key, samples=chunk), chunks
            )
            return [float(r.score or 0.0) for chunk in results for r in chunk]

    def log(self, samples: list[dict[str, Any]]) -> list[float]:
        """Judge logged completions and store the (possibly wrong) judgement as feedback on each."""
        if not self.noise:
            scores = self.verify(samples, store=True)
            self.logged += scores
            return scores
        scores = self.verify(samples)
        said = [1.0 - s if self.rng.random() < self.noise else s for s in scores]

        def write(item: tuple[dict[str, Any], float]) -> None:
            self.client.feedback.log_metric(item[1] >= 1.0, item[0]["completion_id"], self.task.feedback_key)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, zip(samples, said, strict=True)))
        self.logged += said
        return scores

    def duel(self, key: str, first: dict[str, Any], second: dict[str, Any], scores: tuple[float, float]) -> str:
        """A person compares two answers to the same prompt: the passing one wins, both passing or both failing
        is a tie (good or bad); with noise a decisive pick is sometimes reversed."""
        if scores[0] == scores[1]:
            self.client.feedback.log_preference(
                key, first["completion_id"], second["completion_id"], tied="good" if scores[0] else "bad"
            )
            return "tie"
        winner, loser = (first, second) if scores[0] > scores[1] else (second, first)
        if self.rng.random() < self.noise:
            winner, loser = loser, winner
        self.client.feedback.log_preference(key, winner["completion_id"], loser["completion_id"])
        return "decisive"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class LapResult:
    start_model: str
    signal: str
    traffic: int = 0
    passing: int = 0
    logged_passing: int = 0
    duels: str = ""
    rates: dict[str, float] = field(default_factory=dict)
    train_s: dict[str, float] = field(default_factory=dict)
    eval_s: dict[str, float] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)
    ab: str = ""
    challenger: str = ""
    promoted: str = ""


def probe(client: Adaptive, task: Task, prompts: list[str], args: argparse.Namespace, timer: Timer) -> None:
    """The base model's pass rate on the task, sampled and greedy: does feedback have signal to learn from?"""
    people = Feedback(client, task, 0.0, args.seed)
    with timer.stage(f"probe sampled: {len(prompts)} prompts x {args.samples}, T={args.temperature}"):
        sampled = people.verify(serve(client, prompts, args.samples, args.temperature, args.max_tokens, 8))
    with timer.stage(f"probe greedy: {len(prompts)} prompts"):
        greedy_samples = serve(client, prompts, 1, 0.0, args.max_tokens, 8)
        greedy = people.verify(greedy_samples)
    per_prompt = [sum(sampled[i * args.samples : (i + 1) * args.samples]) for i in range(len(prompts))]
    print(f"\n== base pass rate on task '{task.key}' ({len(prompts)} prompts)")
    print(f"   sampled (T={args.temperature}, {args.samples}/prompt): {sum(sampled) / len(sampled):.1%}")
    print(f"   greedy: {sum(greedy) / len(greedy):.1%}")
    print(f"   prompts with at least one passing sample: {sum(1 for n in per_prompt if n)}/{len(prompts)}")
    for sample in greedy_samples[:3]:
        print(f"   greedy e.g. {sample['completion']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the loop, not the learning")
    parser.add_argument("--task", choices=sorted(TASKS), default="city")
    parser.add_argument("--probe", action="store_true", help="only the base model's pass rate, sampled and greedy")
    parser.add_argument("--noise", type=float, default=0.0, help="share of logged feedback values flipped")
    parser.add_argument("--laps", type=int, default=1, help="laps, each from the model the previous one promoted")
    parser.add_argument(
        "--signal",
        choices=["feedback", "preferences"],
        default="feedback",
        help="what laps after the first learn from: graded traffic, or an A/B test's preference duels (dpo)",
    )
    parser.add_argument("--train-prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8, help="sampled completions per training prompt")
    parser.add_argument("--heldout", type=int, default=16)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--sft-epochs", type=float, default=3.0)
    parser.add_argument("--sft-min-value", type=float, default=1.0, help="sft keeps completions with feedback >= it")
    parser.add_argument(
        "--sft-min-copies",
        type=int,
        default=None,
        help="sft pools identical completions of a prompt and keeps those logged this many times (noisy feedback)",
    )
    parser.add_argument("--dpo-epochs", type=float, default=2.0)
    parser.add_argument("--dpo-min-margin", type=float, default=None, help="dpo pairs only this far apart")
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--grpo-generations", type=int, default=4)
    parser.add_argument(
        "--grpo-steps-per-generation", type=int, default=1, help="grpo optimizer steps served by one round of sampling"
    )
    parser.add_argument("--recipes", default="sft,dpo,grpo")
    parser.add_argument("--ab-min", type=int, default=30, help="observations per arm before the A/B decides")
    parser.add_argument("--ab-requests", type=int, default=240, help="most simulated A/B requests")
    parser.add_argument("--concurrency", type=int, default=8, help="chat requests in flight (traffic, eval, A/B)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engine",
        choices=["llamacpp", "transformers"],
        default="llamacpp",
        help="the server's local_engine: it serves traffic, eval and the A/B (grpo samples with llama.cpp either way)",
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.train_prompts, args.samples, args.heldout, args.eval_samples = 4, 4, 2, 2
        args.grpo_steps, args.grpo_generations, args.ab_min, args.ab_requests, args.max_tokens = 1, 2, 2, 16, 16
    if not 0.0 <= args.noise < 0.5:
        parser.error("--noise is a share of flipped values in [0, 0.5)")
    if args.laps < 1:
        parser.error("--laps must be at least 1")
    if args.signal == "preferences" and args.laps < 2:
        parser.error("--signal preferences needs --laps 2 or more: duels need two models (lap 1 learns from feedback)")
    # A SIGTERM (a timeout, a test runner) still runs the finally blocks: the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    task = TASKS[args.task]
    recipes = [r for r in args.recipes.split(",") if r]
    # Each lap serves fresh training prompts; held-out prompts stay disjoint from all of them.
    train_all, held = task.make_prompts(args.train_prompts * args.laps, args.heldout, args.seed)
    timer = Timer()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="closed-loop-"))
    load_start = load()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_start} (1/5/15 min), local engine {args.engine}",
        flush=True,
    )
    started = time.perf_counter()
    laps: list[LapResult] = []
    with server(data_dir, args.ab_min, args.engine) as (base_url, key):
        timer.stages.append(("server start", time.perf_counter() - started))
        client = Adaptive(base_url, api_key=key, timeout_secs=None)  # a slow CPU may take long per batch
        client.use_cases.create(key="closed-loop")
        client.set_default_use_case("closed-loop")
        with timer.stage("deploy the bundled model"):
            client.models.deploy(BUNDLED_CHAT_KEY, wait=True, make_default=True)
        deadline = time.monotonic() + 300
        while not {"sft", "dpo", "grpo", "eval"} <= {r.key for r in client.recipes.list()}:
            if time.monotonic() > deadline:
                raise RuntimeError("built-in recipes not registered")
            time.sleep(1)
        client.feedback.register_key(task.feedback_key, kind="bool")
        client.graders.create.custom(key=task.grader_key, feedback_key=task.feedback_key, code=task.grader_code)
        if args.probe:
            probe(client, task, train_all, args, timer)
            print(f"== load average (1/5/15 min): {load_start} at start, {load()} at the end")
            return
        held_path = data_dir / "heldout.jsonl"
        held_path.write_text("\n".join(json.dumps({"prompt": p}) for p in held))
        client.datasets.upload(str(held_path), "heldout")
        people = Feedback(client, task, args.noise, args.seed + 7)
        current, previous = BUNDLED_CHAT_KEY, None
        for number in range(1, args.laps + 1):
            train = train_all[(number - 1) * args.train_prompts : number * args.train_prompts]
            if number > 1 and args.signal == "preferences":
                assert previous is not None
                lap = preference_lap(client, people, task, args, timer, number, train, held, current, previous)
            else:
                lap = feedback_lap(client, people, task, args, timer, number, train, held, current, recipes)
            laps.append(lap)
            print(f"\n== lap {number} done (held-out, sampled T={args.temperature:.1f}):")
            report_lap(number, lap, args.laps)
            # The next lap starts from the default model; a preference lap duels it against the other arm of
            # this lap's A/B test (the model it replaced, or the challenger that did not win).
            if lap.promoted and lap.promoted != current:
                previous, current = current, lap.promoted
            else:
                previous = lap.challenger

    print(
        f"\n== closed loop on task '{task.key}': held-out pass rate (sampled, T={args.temperature:.1f}, "
        f"{len(held)} prompts x {args.eval_samples})"
        + (f", {args.noise:.0%} of logged feedback flipped" if args.noise else "")
    )
    for number, lap in enumerate(laps, 1):
        report_lap(number, lap, args.laps)
    print("== wall time per stage")
    for name, seconds in timer.stages:
        print(f"   {seconds:7.1f} s  {name}")
    print(f"   {time.perf_counter() - timer.started:7.1f} s  total")
    print(f"== load average (1/5/15 min): {load_start} at start, {load()} at the end, on {os.cpu_count()} CPUs")


def report_lap(number: int, lap: LapResult, laps: int) -> None:
    if laps > 1:
        print(f"-- lap {number}: from {lap.start_model}, signal: {lap.signal}")
    if lap.traffic:
        print(
            f"   training traffic: {lap.traffic} completions, {lap.passing} passing "
            f"({lap.passing / lap.traffic:.1%}), {lap.logged_passing} logged as passing; no gold completions"
        )
    if lap.duels:
        print(f"   {lap.duels}")
    base = lap.rates[lap.start_model]
    print(f"   {'recipe':6s} {'base':>7s} {'tuned':>7s} {'gain':>11s} {'train s':>8s} {'eval s':>7s}")
    for model in lap.trained:
        gain = (lap.rates[model] - base) * 100
        print(
            f"   {model.rsplit('-', 1)[1]:6s} {base:7.1%} {lap.rates[model]:7.1%} {gain:+7.0f} pts "
            f"{lap.train_s[model]:8.1f} {lap.eval_s.get(model, float('nan')):7.1f}"
        )
    print(f"   {lap.ab}; use case default now: {lap.promoted}", flush=True)


def feedback_lap(
    client: Adaptive,
    people: Feedback,
    task: Task,
    args: argparse.Namespace,
    timer: Timer,
    number: int,
    train: list[str],
    held: list[str],
    current: str,
    recipes: list[str],
) -> LapResult:
    """One lap from graded traffic: serve the current default model, log feedback, train each recipe from the
    current model, eval held-out, A/B the best against the current model, promote the winner."""
    lap = LapResult(current, "feedback")
    tag = f"lap {number}: " if args.laps > 1 else ""
    fb = task.feedback_key
    with timer.stage(f"{tag}serve traffic: {len(train)} prompts x {args.samples} samples, logged"):
        logged = serve(client, train, args.samples, args.temperature, args.max_tokens, args.concurrency)
    with timer.stage(f"{tag}grade {len(logged)} logged completions -> feedback {fb}"):
        before = len(people.logged)
        scores = people.log(logged)
    lap.traffic, lap.passing = len(scores), int(sum(scores))
    lap.logged_passing = int(sum(people.logged[before:]))
    print(f"   training traffic pass rate {lap.passing / lap.traffic:.1%} ({lap.passing}/{lap.traffic})", flush=True)
    if args.smoke:
        # The smoke run checks the loop, not the learning: 16 samples may all fail (or all pass), and sft
        # needs a passing interaction, dpo a pass/fail pair. One right and one wrong answer to the first
        # prompt, logged as traffic served elsewhere and graded like the rest, make sure of both.
        extra = []
        for text in (task.answer(train[0]), "I am not sure."):
            messages = [{"role": "user", "content": train[0]}]
            created = client.interactions.create(messages=messages, completion=text)
            extra.append({"messages": messages, "completion": text, "completion_id": created.completion_id})
        assert people.verify(extra, store=True) == [1.0, 0.0], "the verifier must pass the right answer only"
        print("   smoke: one right and one wrong answer logged and graded as well", flush=True)

    tiny = {"max_steps": 1, "batch_size": 2, "lora_rank": 4, "lora_alpha": 8} if args.smoke else {}
    suffix = f"l{number}-" if args.laps > 1 else ""
    if "sft" in recipes:
        with timer.stage(f"{tag}train sft from feedback ({fb} >= {args.sft_min_value:g})"):
            run_job(
                client,
                "sft",
                {
                    "output_model_key": f"closed-{suffix}sft",
                    "base_model": current,
                    "epochs": args.sft_epochs,
                    "feedback_filter": {
                        "feedback_key": fb,
                        "min_value": args.sft_min_value,
                        **({"min_copies": args.sft_min_copies} if args.sft_min_copies else {}),
                    },
                    "max_length": 256,
                    **tiny,
                },
                "sft",
            )
        lap.trained.append(f"closed-{suffix}sft")
    if "dpo" in recipes:
        margin = {} if args.dpo_min_margin is None else {"min_margin": args.dpo_min_margin}
        with timer.stage(f"{tag}train dpo from pass/fail pairs of the same prompt"):
            run_job(
                client,
                "dpo",
                {
                    "output_model_key": f"closed-{suffix}dpo",
                    "base_model": current,
                    "feedback_key": fb,
                    "pairs_from_metric": True,
                    **margin,
                    "epochs": args.dpo_epochs,
                    "learning_rate": 2e-4,
                    "max_length": 256,
                    **tiny,
                },
                "dpo",
            )
        lap.trained.append(f"closed-{suffix}dpo")
    if "grpo" in recipes:
        with timer.stage(f"{tag}train grpo with the verifier as reward"):
            run_job(
                client,
                "grpo",
                {
                    "output_model_key": f"closed-{suffix}grpo",
                    "base_model": current,
                    "graders": [task.grader_key],
                    "prompt_limit": args.train_prompts,
                    "max_steps": args.grpo_steps,
                    "num_generations": args.grpo_generations,
                    "batch_size": 2 * args.grpo_generations,
                    "learning_rate": 1e-4,
                    "steps_per_generation": 1 if args.smoke else args.grpo_steps_per_generation,
                    "max_completion_length": args.max_tokens,
                    "temperature": args.temperature,
                    **({"lora_rank": 4, "lora_alpha": 8} if args.smoke else {}),
                },
                "grpo",
            )
        lap.trained.append(f"closed-{suffix}grpo")
    for model, (_, seconds) in zip(lap.trained, timer.stages[-len(lap.trained) :], strict=True):
        lap.train_s[model] = seconds
    evaluate(client, task, args, timer, tag, held, lap)
    promote(client, people, task, args, timer, tag, number, held, lap)
    return lap


def preference_lap(
    client: Adaptive,
    people: Feedback,
    task: Task,
    args: argparse.Namespace,
    timer: Timer,
    number: int,
    train: list[str],
    held: list[str],
    current: str,
    previous: str,
) -> LapResult:
    """One lap whose only signal is people's preferences: a preference A/B test between the current model and
    the one before it, each training prompt answered by both, a person picks; the duels become a PREFERENCE
    dataset in one call and dpo trains the current model on it; eval, A/B, promote."""
    lap = LapResult(current, "preference duels")
    tag = f"lap {number}: "
    campaign = f"closed-loop-duels-{number}"
    pref_key = f"{task.feedback_key}_pref"
    if number == 2:
        client.feedback.register_key(pref_key, kind="bool")
        client.feedback.link(pref_key)  # an A/B test's key must be the use case's
    client.ab_tests.create(campaign, pref_key, [current, previous], feedback_type="preference")
    with timer.stage(f"{tag}duels: {len(train)} prompts x {args.samples // 2} answered by {current} and {previous}"):
        prompts = [p for p in train for _ in range(max(1, args.samples // 2))]
        ours = serve(client, prompts, 1, args.temperature, args.max_tokens, args.concurrency, campaign, current)
        theirs = serve(client, prompts, 1, args.temperature, args.max_tokens, args.concurrency, campaign, previous)
        scores = people.verify(ours + theirs)
        pairs = zip(ours, theirs, scores[: len(ours)], scores[len(ours) :], strict=True)
        outcomes = [people.duel(pref_key, a, b, (sa, sb)) for a, b, sa, sb in pairs]
        if args.smoke:
            # Tiny models may tie on every duel, which gives no pair: one right answer of the current model and
            # a wrong one of the previous, logged in the A/B test and judged like the rest, make sure of one.
            messages = [{"role": "user", "content": train[0]}]
            samples = []
            for text, model in ((task.answer(train[0]), current), ("I am not sure.", previous)):
                created = client.interactions.create(
                    messages=messages, completion=text, model=model, ab_campaign=campaign
                )
                samples.append({"messages": messages, "completion": text, "completion_id": created.completion_id})
            scores_ = people.verify(samples)
            outcomes.append(people.duel(pref_key, samples[0], samples[1], (scores_[0], scores_[1])))
    decisive = outcomes.count("decisive")
    lap.duels = f"duels: {len(outcomes)}, decisive {decisive}, ties {len(outcomes) - decisive} (ties give no pair)"
    client.ab_tests.cancel(campaign)  # the duels were the point; promotion is decided by the A/B test below
    client.datasets.create_from_filters(f"duels-{number}", "PREFERENCE", filters={"ab_campaign": campaign})
    tiny = {"max_steps": 1, "batch_size": 2, "lora_rank": 4, "lora_alpha": 8} if args.smoke else {}
    model = f"closed-l{number}-dpo"
    with timer.stage(f"{tag}train dpo from the duels"):
        run_job(
            client,
            "dpo",
            {
                "output_model_key": model,
                "base_model": current,
                "dataset": f"duels-{number}",
                "epochs": args.dpo_epochs,
                "learning_rate": 2e-4,
                "max_length": 256,
                **tiny,
            },
            "dpo",
        )
    lap.trained.append(model)
    lap.train_s[model] = timer.stages[-1][1]
    evaluate(client, task, args, timer, tag, held, lap)
    promote(client, people, task, args, timer, tag, number, held, lap)
    return lap


def evaluate(
    client: Adaptive, task: Task, args: argparse.Namespace, timer: Timer, tag: str, held: list[str], lap: LapResult
) -> None:
    """One eval job: the lap's start model and its tuned models on the held-out prompts, graded by the verifier
    (never by the noisy people)."""
    models = [lap.start_model, *lap.trained]
    with timer.stage(f"{tag}eval held-out: {len(models)} models x {len(held)} prompts x {args.eval_samples} samples"):
        job = run_job(
            client,
            "eval",
            {
                "models": models,
                "dataset": "heldout",
                "graders": [task.grader_key],
                "samples_per_prompt": args.eval_samples,
                "temperature": args.temperature,
                "max_tokens": args.max_tokens,
                "concurrency": args.concurrency,
            },
            "eval",
        )
        report = eval_report(client, job)
    lap.rates = {m: grades[task.grader_key]["mean"] or 0.0 for m, grades in report["aggregates"].items()}
    lap.eval_s = report.get("model_seconds") or {}


def promote(
    client: Adaptive,
    people: Feedback,
    task: Task,
    args: argparse.Namespace,
    timer: Timer,
    tag: str,
    number: int,
    held: list[str],
    lap: LapResult,
) -> None:
    """A/B test the lap's start model against its best tuned model on simulated traffic judged by the people
    (noise included), auto-deploy: the winner becomes the use case's default and the next lap's start."""
    best = lap.challenger = max(lap.trained, key=lambda m: lap.rates[m])
    name = f"closed-loop-ab-{number}"
    with timer.stage(f"{tag}A/B test {lap.start_model} vs {best}, auto-deploy"):
        client.ab_tests.create(name, task.feedback_key, [lap.start_model, best], auto_deploy=True)
        sent = 0
        rng = random.Random(args.seed + number)
        status = client.ab_tests.get(name).status
        while sent < args.ab_requests and status.upper() not in ("DONE", "CANCELLED"):
            batch = [rng.choice(held) for _ in range(2 * args.concurrency)]
            people.log(serve(client, batch, 1, args.temperature, args.max_tokens, 2 * args.concurrency, name))
            sent += len(batch)
            status = client.ab_tests.get(name).status
        deadline = time.monotonic() + (5 if args.smoke else 30)  # the evaluator runs on its own interval
        while client.ab_tests.get(name).status.upper() not in ("DONE", "CANCELLED"):
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        campaign = client.ab_tests.get(name)
        if campaign.status.upper() not in ("DONE", "CANCELLED"):
            client.ab_tests.cancel(name)  # undecided: the next lap's traffic must not stay split
    winner = campaign.winner.key if campaign.winner else None
    lap.ab = f"A/B: status {campaign.status}, winner {winner}, {sent} requests"
    lap.promoted = next((s.key for s in client.use_cases.get().model_services if s.is_default), "")


if __name__ == "__main__":
    main()
