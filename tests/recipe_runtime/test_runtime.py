"""The recipe runtime on its own: loading, schema, local runs through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaptive_engine.recipe import RecipeContext, RecipeDefinitionError
from adaptive_engine.recipe.loader import json_schema, run

SRC = str(Path(__file__).resolve().parents[2] / "src")

GOOD = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    steps: int = 2
    greeting: str

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    rows = list(ctx.load_dataset(config.greeting)) if config.greeting.endswith(".jsonl") else []
    for step in range(config.steps):
        ctx.log_metrics(step, {"loss": 1.0 / (step + 1)})
        ctx.report_progress((step + 1) / config.steps, f"step {step}")
    ctx.save_artifact("out.txt", f"{config.greeting} {len(rows)}".encode(), kind="custom")
"""


def write(tmp_path: Path, source: str, name: str = "recipe.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def test_schema_of_a_good_recipe(tmp_path: Path) -> None:
    schema = json_schema(write(tmp_path, GOOD))
    assert schema["type"] == "object"
    assert schema["properties"]["steps"]["default"] == 2
    assert schema["required"] == ["greeting"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("x = 1\n", "no function decorated with @recipe_main"),
        ("def broken(:\n", "syntax error in recipe.py line 1"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
        (
            (
                "from adaptive_engine.recipe import recipe_main\n@recipe_main\nasync def main(config:"
                " dict, ctx):\n    pass\n"
            ),
            "subclass of InputConfig",
        ),
    ],
)
def test_bad_recipes_are_rejected_with_the_reason(tmp_path: Path, source: str, reason: str) -> None:
    with pytest.raises(RecipeDefinitionError, match=reason):
        json_schema(write(tmp_path, source))


def test_local_run_writes_artifacts_and_metrics(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    ctx = RecipeContext.local(tmp_path / "out")
    run(write(tmp_path, GOOD), {"greeting": str(data), "steps": 3}, ctx)
    assert (tmp_path / "out" / "artifacts" / "out.txt").read_text() == f"{data} 2"
    metrics = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 1, 2]


def test_bad_args_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(RecipeDefinitionError, match="steps"):
        run(write(tmp_path, GOOD), {"greeting": "x", "steps": "many"}, RecipeContext.local(tmp_path / "o"))
    with pytest.raises(RecipeDefinitionError, match="greeting: Field required"):
        run(write(tmp_path, GOOD), {}, RecipeContext.local(tmp_path / "o"))


def test_cli_recipe_run(tmp_path: Path) -> None:
    recipe = write(tmp_path, GOOD)
    env = {**os.environ, "PYTHONPATH": SRC}
    out = tmp_path / "cli-out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adaptive_engine.cli",
            "recipe",
            "run",
            str(recipe),
            "--args",
            '{"greeting": "hi"}',
            "--output-dir",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "artifacts" / "out.txt").read_text() == "hi 0"
    assert "[progress] 100% step 1" in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "adaptive_engine.cli", "recipe", "run", str(recipe), "--args", "[1]"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "JSON object" in bad.stderr


def test_cli_recipe_run_against_a_server(server, tmp_path: Path, unique: str) -> None:
    from adaptive_engine import Adaptive

    with Adaptive(server.base_url, api_key=server.api_key) as sdk:
        sdk.use_cases.create(f"dev-{unique}")
        rows = tmp_path / "rows.jsonl"
        rows.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c"}\n')
        sdk.datasets.upload(str(rows), "remote.jsonl", use_case=f"dev-{unique}")
    recipe = write(tmp_path, GOOD)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adaptive_engine.cli",
            "recipe",
            "run",
            str(recipe),
            "--args",
            '{"greeting": "remote.jsonl"}',
            "--output-dir",
            str(out),
            "--base-url",
            server.base_url,
            "--api-key",
            server.api_key,
            "--use-case",
            f"dev-{unique}",
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "artifacts" / "out.txt").read_text() == "remote.jsonl 3"
