"""Recipe sources used by the job tests."""

WORKER = """
import json
from pathlib import Path
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    dataset: str
    steps: int = 2
    model_key: str | None = None

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    rows = list(ctx.load_dataset(config.dataset))
    print(f"loaded {len(rows)} rows for job {ctx.job_id} in {ctx.use_case}", flush=True)
    print(f"client read timeout {ctx.client._timeout.read}", flush=True)
    for step in range(config.steps):
        ctx.log_metrics(step, {"loss": 1.0 / (step + 1)})
        ctx.report_progress((step + 1) / config.steps, f"step {step + 1}")
    datasets = [d.key for d in ctx.client.datasets.list()]
    ctx.save_artifact("summary.json", json.dumps({"rows": len(rows), "datasets": datasets}).encode(), kind="EVALUATION",
                      metadata={"eval_results": [{"model_service": {"key": "m"}, "metric": {"key": "acc"}, "mean": 0.75,
                                                  "count": len(rows)}],
                                "aggregates": {"m2": {"judge": {"mean": 0.5, "std": 0.1, "count": 4}}}})
    if config.model_key:
        folder = ctx.work_dir / "model"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        ctx.register_model(folder, config.model_key, name="Trained")
"""

FAILING = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    pass

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    print("about to fail", flush=True)
    raise ValueError("the data is not what I expected")
"""

SLEEPER = """
import asyncio
import subprocess
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    seconds: float = 300

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    child = subprocess.Popen(["sleep", str(config.seconds)])
    (ctx.work_dir / "child.pid").write_text(str(child.pid))
    ctx.report_progress(0.1, "sleeping")
    await asyncio.sleep(config.seconds)
"""

QUICK = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    n: int = 0

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    print("quick", config.n)
"""

SNOOP = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.sdk import errors

class Config(InputConfig):
    other: str

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.client.use_cases.get()
    try:
        ctx.client.datasets.list(use_case=config.other)
    except errors.NotFoundError:
        print("other use case hidden", flush=True)
        return
    raise RuntimeError("the job key could read another use case")
"""

# Hands its key to the test (through its work folder) and waits to be canceled.
KEY_HOLDER = """
import asyncio
import os
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    seconds: float = 300

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    (ctx.work_dir / "key.tmp").write_text(os.environ["ADAPTIVE_API_KEY"])
    (ctx.work_dir / "key.tmp").rename(ctx.work_dir / "key")
    await asyncio.sleep(config.seconds)
"""
