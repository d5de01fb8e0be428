"""The API key a job runs with: its creator's rights on the job's use case, and of their global rights only
registering models and opening chunked uploads (see JOB_GLOBAL_PERMISSIONS). Tried from outside with the key a
running job hands over."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.identity.helpers import user_client
from tests.integrations.test_integrations import _webhook
from tests.jobs.helpers import job_key


def _refused(error: type[Exception], *calls: Callable[[], Any]) -> None:
    for call in calls:
        with pytest.raises(error):
            call()


def test_job_key_of_an_admin_holds_no_admin_rights(client: Adaptive, server, tmp_path: Path, unique: str) -> None:
    use_case, other, team = f"keys-{unique}", f"keys-other-{unique}", f"keys-{unique}"
    client.use_cases.create(key=use_case)
    client.use_cases.create(key=other)
    client.teams.create(key=team)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "completion": "a"}))
    client.datasets.upload(str(rows), "rows", use_case=use_case)
    before = (
        client.users.list(),
        client.teams.list(),
        client.roles.list(),
        client.use_cases.list(),
        client.api_keys.list(),
    )
    with job_key(client, server, tmp_path, use_case) as (_, as_job):
        # What the job does on its own use case still works.
        assert as_job.use_cases.get().key == use_case
        assert [d.key for d in as_job.datasets.list()] == ["rows"]
        assert [u.key for u in as_job.use_cases.list()] == [use_case]
        assert {j.use_case.key for j in as_job.jobs.list().nodes} == {use_case}
        # A dataset over the SDK's chunking threshold goes up in parts (a global right kept for that), into
        # the job's use case only.
        big = tmp_path / "big.jsonl"
        line = json.dumps({"prompt": "q" * 1000, "completion": "a"}) + "\n"
        big.write_text(line * (6 * 1024 * 1024 // len(line)))
        assert as_job.datasets.upload(str(big), "big", use_case=use_case).key == "big"
        _refused(errors.NotFoundError, lambda: as_job.datasets.upload(str(big), "big", use_case=other))
        # Nothing of the admin's beyond it: no user, team, role, use case, integration or API key management
        # (a key it minted would outlive the job), and other use cases are not there.
        _refused(
            errors.PermissionDeniedError,
            lambda: as_job.users.list(),
            lambda: as_job.users.create(email=f"k-{unique}@example.com", name="K", teams_with_role=[(team, "admin")]),
            lambda: as_job.users.add_to_team(email=f"k-{unique}@example.com", team=team, role="admin"),
            lambda: as_job.teams.create(key=f"k-{unique}"),
            lambda: as_job.roles.create(key=f"k-{unique}", permissions=["admin"]),
            lambda: as_job.use_cases.create(key=f"k-{unique}"),
            lambda: as_job.integrations.list(team),
            lambda: as_job.integrations.create(team, _webhook("https://hooks.example.com/x")),
            lambda: as_job.api_keys.create(name=f"escape-{unique}"),
            lambda: as_job.api_keys.list(),
        )
        _refused(
            errors.NotFoundError,
            lambda: as_job.use_cases.get(other),
            lambda: as_job.datasets.list(use_case=other),
            lambda: as_job.jobs.list(use_case=other),
        )
    assert (
        client.users.list(),
        client.teams.list(),
        client.roles.list(),
        client.use_cases.list(),
        client.api_keys.list(),
    ) == before
    assert client.integrations.list(team) == []


def test_job_key_of_an_editor_sees_only_its_use_case_and_no_team(
    client: Adaptive, server, tmp_path: Path, unique: str
) -> None:
    use_case, other, team = f"ed-{unique}", f"ed-other-{unique}", f"ed-{unique}"
    client.teams.create(key=team)
    with user_client(client, server, f"ed-{unique}@example.com", [(team, "editor")]) as editor:
        editor.use_cases.create(key=use_case, team=team)
        editor.use_cases.create(key=other, team=team)
        assert editor.integrations.list(team) == []  # the editor manages the team's integrations
        with job_key(editor, server, tmp_path, use_case) as (_, as_job):
            assert [u.key for u in as_job.use_cases.list()] == [use_case]
            assert {j.use_case.key for j in as_job.jobs.list().nodes} == {use_case}
            _refused(
                errors.PermissionDeniedError,
                lambda: as_job.integrations.list(team),
                lambda: as_job.use_cases.create(key=f"ed-new-{unique}"),
                lambda: as_job.api_keys.create(name="escape"),
            )
            _refused(errors.NotFoundError, lambda: as_job.use_cases.get(other))
        assert {u.key for u in editor.use_cases.list()} == {use_case, other}
