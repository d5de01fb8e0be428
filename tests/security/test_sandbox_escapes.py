"""The attack of issue 13, against a real `serve` process: user code with an editor's rights tries to read
the server's environment (ADAPTIVE_ADMIN_API_KEY), the data dir's database and admin key file, to create a
file in the data dir and to use a stolen key on the loopback API; from a recipe at upload (the schema
probe), from a running job and from a custom grader. Each attempt fails in the sandbox; the control runs
the same code bare and shows every attempt working, so these tests can fail."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adaptive_engine import Adaptive
from bench.server_process import ServerProcess
from tests.jobs.helpers import wait_for
from tests.security import escape

ADMIN_KEY = "ae_security_admin_" + uuid.uuid4().hex
# A secret of the kind a deployment keeps in the server's environment.
CANARY = "sk-canary-" + uuid.uuid4().hex


class Target:
    def __init__(self, server: ServerProcess, data_dir: Path, editor: Adaptive) -> None:
        self.server, self.data_dir, self.editor = server, data_dir, editor

    @property
    def paths(self) -> tuple[str, str]:
        return str(self.data_dir), self.server.url

    def assert_contained(self, found: dict[str, Any], tag: str) -> None:
        report = json.dumps(found, indent=1)
        print(f"{tag}: {report}")  # what it got, shown with -s or on failure
        assert found["secrets"] == [], f"{tag}: read secrets from other processes' environments\n{report}"
        assert found["read"] == [], f"{tag}: read the data dir\n{report}"
        assert found["wrote"] == [] and not (self.data_dir / f"escaped-{tag}").exists(), (
            f"{tag}: wrote the data dir\n{report}"
        )
        assert found["admin_keys"] == [], f"{tag}: used a stolen admin key\n{report}"
        assert ADMIN_KEY not in report and CANARY not in report
        # It sees no process of the server's: its own PID namespace holds only the sandbox.
        assert found["pids_seen"] <= 3, f"{tag}: sees {found['pids_seen']} other processes\n{report}"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data_dir = tmp_path_factory.mktemp("victim-data")
    # The file a first start without ADAPTIVE_ADMIN_API_KEY writes (0600), next to the database.
    key_file = data_dir / "admin_api_key"
    key_file.write_text(ADMIN_KEY + "\n")
    key_file.chmod(0o600)
    env = {"ADAPTIVE_BUNDLED_MODELS": "false", "ADAPTIVE_BUILTIN_RECIPES": "false", "OPENAI_API_KEY": CANARY}
    with ServerProcess(data_dir, ADMIN_KEY, env=env, log_path=data_dir.parent / "victim.log", timeout_s=120) as server:
        with Adaptive(server.url, api_key=ADMIN_KEY) as admin:
            admin.teams.create(key="victims")
            admin.use_cases.create(key="attack", team="victims")
            admin.users.create(email="editor@example.com", name="editor", teams_with_role=[("victims", "editor")])
            editor_key = admin.api_keys.create(name="attacker", user="editor@example.com").key
        with Adaptive(server.url, api_key=editor_key) as editor:
            editor.set_default_use_case("attack")
            yield Target(server, data_dir, editor)


def test_control_the_attempts_work_without_a_sandbox(target: Target) -> None:
    """The payload itself is sound: run bare on this machine it reads the server's environment and data dir,
    creates a file there and authenticates as the admin."""
    code = escape.bare(*target.paths, server_pid=target.server.proc.pid)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(done.stdout)
    try:
        assert any(s.endswith(":ADAPTIVE_ADMIN_API_KEY") for s in found["secrets"]), found
        assert any(s.endswith(":OPENAI_API_KEY") for s in found["secrets"]), found
        assert set(found["read"]) == {"engine.db", "admin_api_key"}, found
        assert found["wrote"] == ["escaped-control"] and (target.data_dir / "escaped-control").exists()
        assert found["admin_keys"] == [ADMIN_KEY[:6] + "..."], found
    finally:
        (target.data_dir / "escaped-control").unlink(missing_ok=True)


def test_recipe_code_at_upload_is_contained(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "probe_escape.py"
    path.write_text(escape.recipe_probed_at_upload(*target.paths))
    recipe = target.editor.recipes.upload(str(path), recipe_key="probe-escape")
    found = json.loads(recipe.json_schema["properties"]["found"]["default"])
    target.assert_contained(found, "probe")
    # No network at all while a recipe is probed.
    assert found["own_key"] is None


def test_a_running_job_is_contained(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "job_escape.py"
    path.write_text(escape.recipe_escaping_as_job(*target.paths))
    target.editor.recipes.upload(str(path), recipe_key="job-escape")
    job = wait_for(target.editor, target.editor.jobs.run("job-escape", num_gpus=0).id)
    logs = target.editor.jobs.logs(job.id)
    assert job.status == "COMPLETED", f"{job.error}\n{logs}"
    line = next(line for line in logs.splitlines() if line.startswith("FOUND "))
    found = json.loads(line[len("FOUND ") :])
    target.assert_contained(found, "job")
    # A job keeps the loopback API, with its own key only, whose rights stop at the job's scope.
    assert found["own_key"].startswith("refused"), found


def test_a_custom_grader_is_contained(target: Target) -> None:
    target.editor.graders.create.custom(
        key="grader-escape", feedback_key="escape", code=escape.grader_escaping(*target.paths)
    )
    result = target.editor.graders.grade(grader_key="grader-escape", messages=[], completion="x")
    assert result.error is None, result.error
    target.assert_contained(json.loads(result.reasoning), "grader")
