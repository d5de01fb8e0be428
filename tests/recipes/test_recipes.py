"""Recipes through our SDK: file and folder uploads, entrypoint rules, schema derivation, rejections."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors

RECIPE = """
from typing import Literal
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Inner(InputConfig):
    rate: float = 0.1

class Config(InputConfig):
    dataset: str
    epochs: int = 1
    mode: Literal["fast", "slow"] = "fast"
    inner: Inner = Inner()
    tags: list[str] = []

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.report_progress(1.0, "done")
"""


@pytest.fixture
def use_case(client: Adaptive, unique: str) -> str:
    client.use_cases.create(key=f"rc-{unique}")
    client.set_default_use_case(f"rc-{unique}")
    return f"rc-{unique}"


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source)
    return path


def test_upload_file_schema_and_sample(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    recipe = client.recipes.upload(str(write(tmp_path, "train.py", RECIPE)), labels={"team": "ml"}, description="d")
    assert recipe.key == "train" and recipe.name == "train" and recipe.description == "d"
    assert recipe.labels[0].key == "team" and "recipe_main" in recipe.content
    schema = recipe.json_schema
    assert schema["required"] == ["dataset"] and schema["properties"]["epochs"]["default"] == 1
    sample = client.recipes.generate_sample_input("train")
    jsonschema.validate(sample, schema)
    assert sample["epochs"] == 1 and sample["mode"] == "fast"
    assert client.recipes.get(recipe.id).key == "train"
    assert [r.key for r in client.recipes.list() if not r.builtin] == ["train"]


def test_folder_upload_with_entrypoint(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    write(folder, "helpers.py", "FACTOR = 3\n")
    write(
        folder,
        "run_me.py",
        RECIPE.replace("epochs: int = 1", "epochs: int = FACTOR").replace(
            "from typing import Literal", "from typing import Literal\nfrom helpers import FACTOR"
        ),
    )
    recipe = client.recipes.upload(str(folder), entrypoint="run_me.py")
    assert recipe.key == "proj/run_me"
    assert recipe.json_schema["properties"]["epochs"]["default"] == 3
    with_main = tmp_path / "withmain"
    write(with_main, "main.py", RECIPE)
    write(with_main, "other.py", RECIPE)
    with pytest.raises(ValueError, match="main.py already exists"):
        client.recipes.upload(str(with_main), entrypoint="other.py")
    assert client.recipes.upload(str(with_main)).key == "withmain"
    with pytest.raises(FileNotFoundError, match="main.py"):
        client.recipes.upload(str(folder))
    with pytest.raises(FileNotFoundError, match="missing.py"):
        client.recipes.upload(
            str(tmp_path / "proj2" if (tmp_path / "proj2").mkdir() is None else ""), entrypoint="missing.py"
        )
    with pytest.raises(ValueError, match="only supported when path is a directory"):
        client.recipes.upload(str(folder / "helpers.py"), entrypoint="x.py")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("x = 1\n", "no function decorated with @recipe_main"),
        ("def f(:\n  pass\n", "syntax error in main.py line 1"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        (
            "from pydantic import ConfigDict\nfrom adaptive_engine.recipe import InputConfig, recipe_main\n"
            "class Thing:\n    pass\n"
            "class Config(InputConfig):\n    model_config = ConfigDict(arbitrary_types_allowed=True)\n    when: Thing\n"
            "@recipe_main\nasync def main(config: Config, ctx):\n    pass\n",
            "the recipe's Config has no valid JSON schema",
        ),
    ],
)
def test_bad_recipes_rejected_with_reason(
    client: Adaptive, use_case: str, tmp_path: Path, source: str, reason: str
) -> None:
    with pytest.raises(errors.ValidationError, match="recipe rejected") as caught:
        client.recipes.upload(str(write(tmp_path, "bad.py", source)))
    assert reason in caught.value.message
    assert [r for r in client.recipes.list() if not r.builtin] == []


def test_update_and_delete(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    client.recipes.upload(str(write(tmp_path, "r.py", RECIPE)), recipe_key="r1", name="First")
    updated = client.recipes.update("r1", name="Renamed", labels=[("job_kind", "training")])
    assert updated.name == "Renamed" and updated.labels[0].value == "training"
    old_hash = updated.content_hash
    changed = client.recipes.update(
        "r1", path=str(write(tmp_path, "r2.py", RECIPE.replace("epochs: int = 1", "epochs: int = 5")))
    )
    assert changed.content_hash != old_hash and changed.json_schema["properties"]["epochs"]["default"] == 5
    with pytest.raises(errors.ValidationError, match="recipe rejected"):
        client.recipes.update("r1", path=str(write(tmp_path, "r3.py", "x = 1\n")))
    assert client.recipes.get("r1").content_hash == changed.content_hash
    with pytest.raises(errors.ConflictError):
        client.recipes.upload(str(write(tmp_path, "r.py", RECIPE)), recipe_key="r1")
    assert client.recipes.delete("r1") is True
    with pytest.raises(errors.NotFoundError):
        client.recipes.get("r1")


def test_job_client_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from adaptive_engine.recipe import context

    env = {context.ENV_BASE_URL: "http://127.0.0.1:1", context.ENV_API_KEY: "k", context.ENV_JOB_ID: "j"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(context.ENV_CLIENT_TIMEOUT, raising=False)
    assert context.RecipeContext.from_env().client._timeout.read == context.JOB_CLIENT_TIMEOUT_S
    monkeypatch.setenv(context.ENV_CLIENT_TIMEOUT, "7.5")
    assert context.RecipeContext.from_env().client._timeout.read == 7.5
    for bad in ("soon", "0"):
        monkeypatch.setenv(context.ENV_CLIENT_TIMEOUT, bad)
        with pytest.raises(ValueError, match=context.ENV_CLIENT_TIMEOUT):
            context.RecipeContext.from_env().client  # noqa: B018
