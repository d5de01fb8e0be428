"""Schemathesis against a live server, on SQLite and on PostgreSQL: every data-plane REST operation of our
/openapi.json and every GraphQL root field, with generated valid and invalid input, as the admin. No answer
may be a server error (a 5xx, or a GraphQL error coded INTERNAL), and no connection may drop (the client
would raise). No operation is left out: with no model loaded and nothing to reach outside, none streams or
loads for long. Bounded to about two minutes in all: few examples per operation, a timeout per request,
and derandomized generation (the same cases each run, so a failure reproduces; raise ``max_examples`` for
a deeper run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.graphql import nodes

from adaptive_engine import Adaptive
from tests.support import ADMIN_KEY, LiveServer, make_settings, private_postgres_database

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
CONFIG = schemathesis.Config.from_dict(
    {
        "headers": AUTH,
        "request-timeout": 30,  # a request that hangs fails the run
        "generation": {"mode": "all"},  # valid input, and input the schema forbids
    }
)
EXAMPLES = settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

# What the fuzzed server holds, so that generated input sometimes names something that exists and reaches
# past the lookups: a use case, a feedback key (bool) and a team, all with this key.
SEEDED = "fuzz"

# Our custom scalars (graphql/scalars.py), as GraphQL literals.
_text = st.text(max_size=40)
schemathesis.graphql.scalar("IdOrKey", st.one_of(st.just(SEEDED), _text, st.uuids().map(str)).map(nodes.String))
_moment = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**42).map(nodes.Int),
    _text.map(nodes.String),
    st.datetimes().map(lambda d: nodes.String(d.isoformat())),
)
schemathesis.graphql.scalar("Timestamp", _moment)
schemathesis.graphql.scalar("InputDatetime", _moment)
# Files come as multipart uploads, which schemathesis does not send: a literal where a file belongs.
schemathesis.graphql.scalar("Upload", _text.map(nodes.String))
schemathesis.graphql.scalar(
    "JSON", st.one_of(_text.map(nodes.String), st.integers().map(nodes.Int), st.booleans().map(nodes.Boolean))
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own (generated input creates and changes things), on a database of its own."""
    with ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if request.param == "postgresql" else None
        live = stack.enter_context(LiveServer(make_settings(tmp_path_factory.mktemp("fuzzed"), url)))
        with Adaptive(live.base_url, api_key=live.api_key) as client:
            client.use_cases.create(SEEDED)
            client.feedback.register_key(SEEDED, kind="bool")
            client.teams.create(SEEDED)
        yield live


@pytest.fixture(scope="module")
def rest_schema(fuzzed: LiveServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json", config=CONFIG, headers=AUTH)
    return schema.include(path_regex="^/api/v1/")


@pytest.fixture(scope="module")
def graphql_schema(fuzzed: LiveServer) -> Any:
    return schemathesis.graphql.from_url(f"{fuzzed.base_url}/api/graphql", config=CONFIG, headers=AUTH)


@schemathesis.check
def no_internal_graphql_error(ctx: Any, response: Any, case: Any) -> None:
    """Our GraphQL errors carry a code; INTERNAL is the server's own failure (NOT_FOUND, INVALID_INPUT and
    the like answer the caller's input, which schemathesis' own check would count as resolver failures)."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    for error in response.json().get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code and code != "INTERNAL", f"server error: {error}"


def fuzz(schema: Any, check: Any) -> None:
    """Each operation with valid and invalid generated input; every failure is reported, not only the first.
    (Driven here rather than by schemathesis' pytest plugin, whose fixture loader does not run on our pytest.)"""
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        generated = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
        strategy = st.tuples(generated, st.booleans()).map(lambda pair: _aimed(*pair))

        @EXAMPLES
        @given(case=strategy)
        def run(case: Any) -> None:
            case.call_and_validate(checks=[check])

        try:
            run()
        except Exception as exc:  # collected, reported together below
            failures.append(f"{operation.label}: {exc}")
    assert operations > 0
    assert not failures, "\n\n".join(failures)


def _aimed(case: Any, aim: bool) -> Any:
    """Half the REST bodies name the seeded records where they name a use case, model or metric."""
    bodies = case.body if isinstance(case.body, list) else [case.body]
    for body in bodies if aim else []:
        if isinstance(body, dict):
            body.update({key: SEEDED for key in ("use_case", "model", "metric") if isinstance(body.get(key), str)})
    return case


def test_rest_data_plane_never_answers_a_server_error(rest_schema: Any) -> None:
    fuzz(rest_schema, not_a_server_error)


def test_graphql_never_answers_a_server_error(graphql_schema: Any) -> None:
    fuzz(graphql_schema, no_internal_graphql_error)
