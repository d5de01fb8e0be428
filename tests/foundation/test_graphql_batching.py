"""List fields run a bounded number of SQL statements, whatever the number of items (no query per item).

Each test grows a list from 3 to 12 items and counts the statements the server runs for the same GraphQL
request (the fields our SDK asks for); the count must not grow. Requests run as a team member, not an
admin, so the per-item permission checks (a model's use cases, a use case's permissions) are counted too.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from adaptive_engine import Adaptive
from adaptive_engine.sdk.resources.ab_tests import CAMPAIGN_FIELDS
from adaptive_engine.sdk.resources.datasets import DATASET_FIELDS
from adaptive_engine.sdk.resources.feedback import KEY_FIELDS
from adaptive_engine.sdk.resources.jobs import JOB_FIELDS
from adaptive_engine.sdk.resources.models import MODEL_FIELDS
from adaptive_engine.sdk.resources.recipes import RECIPE_FIELDS
from adaptive_engine.sdk.resources.use_cases import USE_CASE_FIELDS
from adaptive_engine.sdk.resources.users import USER_FIELDS
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.support import LiveServer, counting_statements, make_settings, private_postgres_database

SIZES = (3, 12)


@pytest.fixture(scope="module")
def quiet(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own whose background loops stay idle, so only the measured request reaches its database
    (on PostgreSQL a database of its own: two apps on one database race on start-up work)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        settings = make_settings(
            tmp_path_factory.mktemp("batching"),
            url,
            ab_test_evaluation_interval_s=0,
            online_grading_interval_s=0,
            housekeeping_interval_s=0,
            job_poll_interval_s=3600,
            notify_poll_interval_s=3600,
        )
        yield stack.enter_context(LiveServer(settings))


class Team:
    """A team, an editor in it with their own key, and the admin's client to create things."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.suffix = uuid.uuid4().hex[:6]
        self.key = f"batch-{self.suffix}"
        self.admin = Adaptive(server.base_url, api_key=server.api_key)
        self.admin.teams.create(key=self.key)
        email = f"member-{self.suffix}@example.com"
        self.admin.users.create(email=email, name="member", teams_with_role=[(self.key, "editor")])
        self.member_key = self.admin.api_keys.create(name="batching", user=email).key
        self.use_cases: list[str] = []

    def add_use_case(self) -> str:
        """A use case of the team with two feedback keys linked, two models attached and an A/B test."""
        a = self.admin
        uc = f"uc-{self.suffix}-{len(self.use_cases)}"
        a.use_cases.create(key=uc, team=self.key)
        metrics = []
        for j in range(2):
            metric = f"fk-{uc}-{j}"
            a.feedback.register_key(key=metric, kind="scalar")
            a.feedback.link(metric, use_case=uc)
            metrics.append(metric)
        models = []
        for j in range(2):
            model = f"m-{uc}-{j}"
            a.models.add_external(
                name=model,
                key=model,
                external_model_id="gpt",
                api_key="sk-test",
                provider="open_ai",
                endpoint="http://127.0.0.1:9/v1",
            )
            a.models.add_to_use_case(model, use_case=uc)
            models.append(model)
        a.ab_tests.create(f"ab-{uc}", feedback_key=metrics[0], models=models, use_case=uc)
        self.use_cases.append(uc)
        return uc

    def statements(
        self, query: str, variables: dict[str, Any] | None = None, as_admin: bool = False
    ) -> tuple[int, Any]:
        """How many SQL statements the server runs to answer ``query`` (and the answer's data). Every
        measure starts cold: a new role drops the cached principals and what they memoized of their rights."""
        self.admin.roles.create(key=f"cold-{uuid.uuid4().hex[:8]}", permissions=["use_case:read"])
        self.server.settle()
        with counting_statements(self.server) as seen:
            r = httpx.post(
                f"{self.server.base_url}/api/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {self.server.api_key if as_admin else self.member_key}"},
                timeout=60,
            )
        body = r.json()
        assert not body.get("errors"), body["errors"]
        return len(seen), body["data"]

    def close(self) -> None:
        self.admin.close()


@pytest.fixture
def team(quiet: LiveServer) -> Iterator[Team]:
    t = Team(quiet)
    yield t
    t.close()


def grow_and_count(grow: Any, measure: Any) -> dict[int, int]:
    """Statements of ``measure()`` with 3, then 12 items (``grow(n)`` brings the list to n items)."""
    counts = {}
    for n in SIZES:
        grow(n)
        counts[n] = measure(n)
    return counts


def test_use_cases_with_metrics_models_and_shares(quiet: LiveServer, team: Team) -> None:
    query = f"{{ useCases {{ {USE_CASE_FIELDS} }} }}"

    def grow(n: int) -> None:
        while len(team.use_cases) < n:
            team.add_use_case()

    def measure(n: int) -> int:
        count, data = team.statements(query)
        assert len(data["useCases"]) == n
        assert all(
            len(u["metrics"]) == 2 and len(u["modelServices"]) == 2 and u["permissions"] for u in data["useCases"]
        )
        return count

    counts = grow_and_count(grow, measure)
    print("useCases statements:", counts)
    assert counts[12] == counts[3], counts


def test_models_with_their_use_cases(quiet: LiveServer, team: Team) -> None:
    query = f"{{ models(filter: {{}}) {{ {MODEL_FIELDS} }} }}"
    # Every model is also attached to a use case of another team: the member never sees that one.
    hidden_team, hidden = f"hidden-{team.suffix}", f"hidden-uc-{team.suffix}"
    team.admin.teams.create(key=hidden_team)
    team.admin.use_cases.create(key=hidden, team=hidden_team)

    def grow(n: int) -> None:
        while 2 * len(team.use_cases) < n:
            uc = team.add_use_case()
            for j in range(2):
                team.admin.models.add_to_use_case(f"m-{uc}-{j}", use_case=hidden)

    def measure(n: int) -> int:
        count, data = team.statements(query)
        mine = [m for m in data["models"] if team.suffix in m["key"]]
        assert len(mine) == 2 * len(team.use_cases)
        assert all([u["key"] for u in m["useCases"]] == [m["key"][2:-2]] for m in mine)
        return count

    counts = grow_and_count(grow, measure)
    print("models statements:", counts)
    assert counts[12] == counts[3], counts


def test_feedback_keys_with_their_use_cases(quiet: LiveServer, team: Team) -> None:
    query = f"{{ metrics {{ {KEY_FIELDS} useCases {{ id key name description }} }} }}"

    def grow(n: int) -> None:
        while 2 * len(team.use_cases) < n:
            team.add_use_case()

    def measure(n: int) -> int:
        count, data = team.statements(query)
        mine = [m for m in data["metrics"] if team.suffix in m["key"]]
        assert len(mine) == 2 * len(team.use_cases)
        assert all(len(m["useCases"]) == 1 for m in mine)
        return count

    counts = grow_and_count(grow, measure)
    print("metrics statements:", counts)
    assert counts[12] == counts[3], counts


def test_ab_campaigns_with_models_use_case_and_metric(quiet: LiveServer, team: Team) -> None:
    query = f"{{ abCampaigns(filter: {{}}) {{ {CAMPAIGN_FIELDS} }} }}"

    def grow(n: int) -> None:
        while len(team.use_cases) < n:
            team.add_use_case()

    def measure(n: int) -> int:
        count, data = team.statements(query)
        assert len(data["abCampaigns"]) == n
        assert all(len(c["models"]) == 2 and c["useCase"]["key"] in team.use_cases for c in data["abCampaigns"])
        return count

    counts = grow_and_count(grow, measure)
    print("abCampaigns statements:", counts)
    assert counts[12] == counts[3], counts


def test_datasets_with_their_feedback_keys(quiet: LiveServer, team: Team, tmp_path: Path) -> None:
    uc = team.add_use_case()
    made: list[str] = []

    def grow(n: int) -> None:
        while len(made) < n:
            key = f"ds-{len(made)}"
            # Each dataset carries feedback on a key of its own, so each lists a different metric.
            metric = f"dsk-{team.suffix}-{len(made)}"
            team.admin.feedback.register_key(key=metric, kind="scalar")
            path = tmp_path / f"{key}.jsonl"
            row = {"messages": [{"role": "user", "content": "hi"}], "completion": "hello", "feedback": {metric: 1.0}}
            path.write_text(json.dumps(row) + "\n")
            team.admin.datasets.upload(str(path), key, use_case=uc)
            made.append(key)

    def measure(n: int) -> int:
        count, data = team.statements(
            f"query D($u: IdOrKey!) {{ datasets(useCase: $u) {{ {DATASET_FIELDS} }} }}", {"u": uc}
        )
        assert len(data["datasets"]) == n
        assert all(len(d["metricsUsage"]) == 1 for d in data["datasets"])
        return count

    counts = grow_and_count(grow, measure)
    print("datasets statements:", counts)
    assert counts[12] == counts[3], counts


def test_jobs_and_recipes_with_their_creators(quiet: LiveServer, team: Team) -> None:
    uc = team.add_use_case()
    made: list[int] = []

    def grow(n: int) -> None:
        # Each job and recipe by a user of its own (members of the team), with metrics and an artifact.
        emails = []
        for i in range(len(made), n):
            email = f"creator-{team.suffix}-{i}@example.com"
            team.admin.users.create(email=email, name=f"creator {i}", teams_with_role=[(team.key, "editor")])
            emails.append(email)

        async def work(session) -> None:
            use_case = (await session.execute(select(orm.UseCase).where(orm.UseCase.key == uc))).scalar_one()
            for email in emails:
                user = (await session.execute(select(orm.User).where(orm.User.email == email))).scalar_one()
                i = len(made)
                recipe = orm.CustomRecipe(
                    use_case_id=use_case.id,
                    key=f"r-{i}",
                    name=f"recipe {i}",
                    content_hash="0" * 64,
                    path=f"recipes/r-{i}",
                    created_by_id=user.id,
                )
                session.add(recipe)
                await session.flush()
                job = orm.Job(
                    name=f"job {i}",
                    use_case_id=use_case.id,
                    recipe_id=recipe.id,
                    recipe_hash="0" * 64,
                    recipe_path="main.py",
                    status="COMPLETED",
                    created_by_id=user.id,
                )
                session.add(job)
                await session.flush()
                session.add(orm.JobMetric(job_id=job.id, step=1, values={"loss": 1.0}))
                session.add(orm.JobArtifact(job_id=job.id, name="out", kind="CUSTOM"))
                made.append(i)

        in_db(quiet, work)

    def measure(n: int) -> int:
        jobs_query = (
            "query J($u: IdOrKey!) { jobs(page: {first: 100}, filter: {useCase: $u}) { nodes {"
            f" {JOB_FIELDS} }} }} }}"
        )
        jobs, data = team.statements(jobs_query, {"u": uc})
        assert len(data["jobs"]["nodes"]) == n
        assert all(
            j["createdBy"]["email"].startswith("creator-")
            and len(j["metrics"]) == 1
            and len(j["details"]["artifacts"]) == 1
            for j in data["jobs"]["nodes"]
        )
        recipes_query = f"query R($u: IdOrKey!) {{ customRecipes(useCase: $u) {{ {RECIPE_FIELDS} }} }}"
        recipes, data = team.statements(recipes_query, {"u": uc})
        assert len([r for r in data["customRecipes"] if not r["global"]]) == n
        return jobs * 1000 + recipes

    counts = grow_and_count(grow, measure)
    print("jobs / recipes statements:", {n: divmod(c, 1000) for n, c in counts.items()})
    assert counts[12] == counts[3], counts


def test_users_with_their_teams(quiet: LiveServer, team: Team) -> None:
    made: list[str] = []

    def grow(n: int) -> None:
        while len(made) < n:
            email = f"u-{team.suffix}-{len(made)}@example.com"
            team.admin.users.create(email=email, name="u", teams_with_role=[(team.key, "viewer")])
            made.append(email)

    def measure(n: int) -> int:
        count, data = team.statements(f"{{ users {{ {USER_FIELDS} }} }}", as_admin=True)
        assert sum(1 for u in data["users"] if u["email"] in made) == n
        return count

    counts = grow_and_count(grow, measure)
    print("users statements:", counts)
    assert counts[12] == counts[3], counts


def test_loaders_read_what_an_earlier_mutation_of_the_request_wrote(quiet: LiveServer, team: Team) -> None:
    """Loaders batch, never cache: the second mutation's answer shows the shares the first one replaced."""
    uc = team.add_use_case()
    other = f"other-{team.suffix}"
    team.admin.teams.create(key=other)
    query = """mutation($uc: IdOrKey!, $team: String!, $other: String!) {
      a: shareUseCase(idOrKey: $uc, input: {shares: [{team: $team, role: "admin", isOwner: true}]}) {
        shares { team { key } }
      }
      b: shareUseCase(idOrKey: $uc, input: {shares: [{team: $team, role: "admin", isOwner: true},
                                                      {team: $other, role: "viewer", isOwner: false}]}) {
        shares { team { key } }
      }
    }"""
    _, data = team.statements(query, {"uc": uc, "team": team.key, "other": other}, as_admin=True)
    assert [s["team"]["key"] for s in data["a"]["shares"]] == [team.key]
    assert sorted(s["team"]["key"] for s in data["b"]["shares"]) == sorted([team.key, other])
