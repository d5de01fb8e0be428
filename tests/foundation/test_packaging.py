"""Packaging: `pip install adaptive-engine` is the SDK and recipe runtime alone (no server dependency, loose
lower bounds); the server, local models, Ray and vLLM are extras; the server's entry point names the missing
extra."""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")

# Distributions only the [server] extra (or those above it) may bring.
SERVER_DISTRIBUTIONS = {
    "fastapi",
    "uvicorn",
    "strawberry-graphql",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "redis",
    "pydantic-settings",
    "aiohttp",
    "websockets",
    "prometheus-client",
    "torch",
    "transformers",
    "ray",
    "vllm",
    "uvloop",
    "httptools",
    "tenacity",
    "python-multipart",
}
# Their import names, blocked in the subprocesses below as on a machine with the SDK alone.
SERVER_MODULES = (
    "fastapi",
    "uvicorn",
    "strawberry",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "redis",
    "pydantic_settings",
    "aiohttp",
    "websockets",
    "prometheus_client",
    "starlette",
    "torch",
    "transformers",
    "sentence_transformers",
    "ray",
    "vllm",
    "tenacity",
    "multipart",
    "jsonschema",
    "pybars",
)


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> email.message.Message:
    """The METADATA of the wheel built from this tree (in a copy, so the checkout gets no build folder)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(tree),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = out.glob("adaptive_engine-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert any(n.endswith("adaptive_engine/py.typed") for n in archive.namelist())
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_the_base_install_is_the_sdk_with_loose_lower_bounds(metadata: email.message.Message) -> None:
    requirements = metadata.get_all("Requires-Dist") or []
    base = [r for r in requirements if "extra ==" not in r]
    assert {_name(r) for r in base} == {"httpx", "pydantic", "typer", "rich"}
    assert not {_name(r) for r in base} & SERVER_DISTRIBUTIONS
    # Lower bounds only: an application's own pins decide the versions.
    assert all(">=" in r and "==" not in r and "<" not in r.replace(">=", "") for r in base), base


def test_extras_carry_the_server(metadata: email.message.Message) -> None:
    requirements = metadata.get_all("Requires-Dist") or []

    def extra(name: str) -> set[str]:
        return {_name(r) for r in requirements if re.search(rf"extra == ['\"]{name}['\"]", r)}

    assert {"fastapi", "sqlalchemy", "asyncpg", "strawberry-graphql", "uvicorn", "alembic"} <= extra("server")
    # [local], [ray] and [vllm] each bring the server too (an extra of the distribution itself).
    for name, own in (("local", "torch"), ("ray", "ray"), ("vllm", "vllm")):
        assert {"adaptive-engine", own} <= extra(name), name
    assert set(metadata.get_all("Provides-Extra") or []) >= {"server", "local", "ray", "vllm", "dev"}


def test_python_versions_are_declared(metadata: email.message.Message) -> None:
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier") or []
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert metadata["License-Expression"] == "Apache-2.0"


BLOCKED = f"""
import sys
# As on a machine where only `pip install adaptive-engine` ran: the server's packages do not import.
for name in {SERVER_MODULES!r}:
    sys.modules[name] = None
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED + code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
    )


def test_sdk_and_recipe_runtime_import_without_the_server() -> None:
    done = _run("""
import adaptive_engine, adaptive_engine.sdk, adaptive_engine.sdk.types, adaptive_engine.cli.main
import adaptive_engine.recipe.loader, adaptive_engine.recipe.context, adaptive_engine.recipe.entry
from adaptive_engine import Adaptive, AsyncAdaptive
client = Adaptive("http://127.0.0.1:9", api_key="k")
client.close()
print("imported", Adaptive.__name__, AsyncAdaptive.__name__)
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported Adaptive AsyncAdaptive"


def test_sdk_import_loads_no_server_module_even_where_installed() -> None:
    # In this environment the server is installed: importing the SDK must still not load any of it.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"""
import sys
import adaptive_engine, adaptive_engine.sdk, adaptive_engine.recipe.loader
print(sorted(n for n in {SERVER_MODULES!r} if n in sys.modules))
""",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [["serve"], ["keys", "list", "--email", "admin@localhost"]])
def test_server_commands_name_the_missing_extra(command: list[str], tmp_path: Path) -> None:
    done = _run(
        """
sys.argv = ["adaptive-engine", *sys.argv[1:]]
from adaptive_engine.cli.main import main
main()
""",
        *command,
        "--data-dir",
        str(tmp_path),
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the server needs the [server] extra (fastapi is not installed): pip install 'adaptive-engine[server]'"
    )
    assert list(tmp_path.iterdir()) == []  # nothing was created
