"""GraphQL limits (graphql/limits.py): documents over the token, cost, depth or alias limit are refused with
QUERY_TOO_COMPLEX before anything runs; a query over its time budget is cancelled with DEADLINE_EXCEEDED;
every query our SDK and the official client send passes the default limits."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import pkgutil
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import strawberry
from graphql import OperationDefinitionNode, get_introspection_query, parse, print_ast
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

import adaptive_engine.sdk
from adaptive_engine.server.config import Settings
from adaptive_engine.server.graphql.errors import ErrorsAndTransaction
from adaptive_engine.server.graphql.limits import TimeBudget
from adaptive_engine.server.graphql.schema import Schema, build_schema
from adaptive_engine.server.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.support import (
    LiveServer,
    counting_statements,
    make_settings,
    private_postgres_database,
)


def post(server: LiveServer, query: str, variables: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    response = httpx.post(
        f"{server.base_url}/api/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=120,
    )
    return response.status_code, response.json()


def refusal(server: LiveServer, query: str, limit: str) -> str:
    """The message of the QUERY_TOO_COMPLEX error ``query`` gets for ``limit``, checking the shape on the way."""
    status, body = post(server, query)
    assert status == 200, body  # our GraphQL convention: errors ride in the body with extensions.code
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["extensions"]["details"]["limit"] == limit, error
    return error["message"]


def works(server: LiveServer) -> None:
    """The server answers a normal request normally."""
    assert post(server, "{ me { email } }") == (200, {"data": {"me": {"email": "admin@localhost"}}})


ALIAS_BOMB = (
    "{ " + " ".join(f'a{i}: completions(filter: {{useCase: "x"}}) {{ totalCount }}' for i in range(2000)) + " }"
)


def aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ email }}" for i in range(n)) + " }"


def backbones(depth: int) -> str:
    return "{ models { " + "backbone { " * depth + "key" + " }" * depth + " } }"


# Page of 1,000 groups, each with a page of 1,000 completions: a million completions with their messages.
COST_BOMB = (
    '{ completionsGrouped(groupBy: MODEL, filter: {useCase: "x"}, page: {first: 1000}) { nodes {'
    " completions(page: {first: 1000}) { nodes { id completion chatMessages { role content } } } } } }"
)
# Each fragment spreads the next twice: 2^40 fields once inlined, from a few hundred tokens.
FRAGMENT_BOMB = (
    "query { ...F0 } "
    + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    + " fragment F40 on Query { me { email } }"
)


# --- the default limits, on the shared server ---------------------------------------------------------


def test_alias_bomb_is_refused_before_anything_runs(server: LiveServer) -> None:
    with counting_statements(server, requests_only=True) as statements:
        message = refusal(server, ALIAS_BOMB, "tokens")
    assert message == "The query is longer than 5,000 tokens (setting ADAPTIVE_GRAPHQL_MAX_TOKENS)"
    assert not [s for s in statements if "completions" in s]
    # Under the token limit, the alias limit names the count.
    assert (
        refusal(server, aliases(150), "aliases")
        == "150 aliases found. Allowed: 100 (setting ADAPTIVE_GRAPHQL_MAX_ALIASES)"
    )
    works(server)
    assert post(server, aliases(100))[1]["data"]["a99"] == {"email": "admin@localhost"}


def test_deep_token_heavy_and_costly_queries_are_refused(server: LiveServer) -> None:
    assert refusal(server, backbones(16), "depth") == (
        "'anonymous' exceeds maximum operation depth of 15 (setting ADAPTIVE_GRAPHQL_MAX_DEPTH)"
    )
    assert "errors" not in post(server, backbones(14))[1]
    assert refusal(server, "{ me { " + "email " * 5000 + "} }", "tokens").startswith(
        "The query is longer than 5,000 tokens"
    )
    message = refusal(server, COST_BOMB, "cost")
    assert message.startswith(
        "The query's estimated cost is 33,002,001, the limit is 10,000,000: ask for smaller pages"
    )
    assert message.endswith("(setting ADAPTIVE_GRAPHQL_MAX_COST)")
    # The page sizes may come from variables.
    paged = COST_BOMB.replace("{first: 1000}", "$page").replace(
        "{ completionsGrouped", "query($page: CursorPageInput) { completionsGrouped"
    )
    body = post(server, paged, {"page": {"first": 1000}})[1]
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    body = post(server, paged, {"page": {"first": 10}})[1]
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]  # past the limits: the resolver answers
    works(server)


def test_fragment_bomb_is_refused_without_expanding_it(server: LiveServer) -> None:
    started = time.perf_counter()
    message = refusal(server, FRAGMENT_BOMB, "inlined fields")
    assert message == "The query has 2,199,023,255,552 fields once its fragments are inlined, the limit is 10,000"
    assert time.perf_counter() - started < 30  # expanded, it would take years; the bench measures the real time
    chain = (
        "query { ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(600))
        + " fragment F600 on Query { __typename }"
    )
    assert refusal(server, chain, "nesting") == "The query nests deeper than 200 levels once its fragments are inlined"
    # Unknown or cyclic fragments are ordinary validation errors, never an internal one.
    for query in ("{ me { ...Missing } }", "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"):
        codes = {e["extensions"]["code"] for e in post(server, query)[1]["errors"]}
        assert codes == {"INVALID_INPUT"}, query
    works(server)


# --- settings -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def own_server(database: str | None, data_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    """A server with its own settings (on PostgreSQL a database of its own: two apps on one database race on
    start-up work)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        yield stack.enter_context(LiveServer(make_settings(data_dir, url, **settings)))


def test_settings_lower_and_raise_the_limits(database: str | None, tmp_path: Path) -> None:
    tight = {"graphql_max_tokens": 40, "graphql_max_depth": 2, "graphql_max_aliases": 1, "graphql_max_cost": 50}
    with own_server(database, tmp_path / "tight", **tight) as server:
        works(server)
        assert (
            refusal(server, aliases(2), "aliases")
            == "2 aliases found. Allowed: 1 (setting ADAPTIVE_GRAPHQL_MAX_ALIASES)"
        )
        assert refusal(server, backbones(2), "depth").startswith("'anonymous' exceeds maximum operation depth of 2")
        assert refusal(server, "{ me { " + "email " * 40 + "} }", "tokens").startswith(
            "The query is longer than 40 tokens"
        )
        assert refusal(server, "{ useCases { key metrics { key } } }", "cost") == (
            "The query's estimated cost is 220, the limit is 50: ask for smaller pages (page: {first: N}) or fewer"
            " nested lists (setting ADAPTIVE_GRAPHQL_MAX_COST)"
        )
    raised = {"graphql_max_tokens": 0, "graphql_max_depth": 0, "graphql_max_aliases": 500, "graphql_max_cost": 10**12}
    with own_server(database, tmp_path / "raised", **raised) as server:
        assert len(post(server, aliases(300))[1]["data"]) == 300
        assert "errors" not in post(server, backbones(30))[1]
        assert refusal(server, aliases(501), "aliases").startswith("501 aliases found. Allowed: 500")
        [error] = post(server, COST_BOMB)[1]["errors"]  # past the limits, the resolver answers
        assert error["extensions"]["code"] == "NOT_FOUND", error


# --- the time budget ------------------------------------------------------------------------------------


def test_a_query_over_its_time_budget_is_cancelled(database: str | None, tmp_path: Path) -> None:
    with own_server(database, tmp_path, graphql_timeout_s=1.0) as server:
        auth = {"Authorization": f"Bearer {server.api_key}"}
        status, body = post(server, 'mutation { createUseCase(input: {name: "budget", key: "budget"}) { key } }')
        assert body == {"data": {"createUseCase": {"key": "budget"}}}, body
        row = {
            "use_case": "budget",
            "completion": "Paris. " * 20,
            "labels": {"a": "1", "b": "2"},
            "messages": [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."},
            ],
        }
        for _ in range(2):
            response = httpx.post(f"{server.base_url}/api/v1/interactions", json=[row] * 500, headers=auth, timeout=120)
            assert response.status_code == 201, response.text
        # Twenty pages of 1,000 completions with their messages and labels: seconds of work on any machine (a
        # light query takes a tenth of the budget).
        heavy = (
            "{ "
            + " ".join(
                f'p{i}: completions(filter: {{useCase: "budget"}}, page: {{first: 1000}}) {{'
                " totalCount nodes { id completion"
                " chatMessages { role content } labels { key value } model { key } } }"
                for i in range(20)
            )
            + " }"
        )
        started = time.perf_counter()
        status, body = post(server, heavy)
        elapsed = time.perf_counter() - started
        assert status == 200 and body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "DEADLINE_EXCEEDED"
        assert error["message"].startswith("The query ran longer than its time budget of 1 s and was cancelled")
        assert elapsed < 30, elapsed
        works(server)
        body = post(server, '{ completions(filter: {useCase: "budget"}, page: {first: 1}) { totalCount } }')[1]
        assert body == {"data": {"completions": {"totalCount": 1000}}}, body


@dataclass
class _Context:
    session: AsyncSession


@strawberry.type
class _SlowQuery:
    @strawberry.field
    async def slow(self, info: strawberry.Info) -> int:
        session = info.context.session
        if session.bind.dialect.name == "sqlite":
            statement = (
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000)"
                " SELECT count(*) FROM c"
            )
        else:
            statement = "SELECT pg_sleep(60)"
        return (await session.execute(text(statement))).scalar_one()


def test_the_time_budget_stops_the_statement_in_the_database(database: str | None, tmp_path: Path) -> None:
    """One statement of a minute: the budget ends it in the database itself (SQLite's interrupt; PostgreSQL's
    cancel), and the answer comes when the budget ends, not when the statement would have."""
    url = database or f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}"
    schema = Schema(query=_SlowQuery, extensions=[ErrorsAndTransaction, partial(TimeBudget, 0.3)])

    async def main() -> None:
        engine = create_async_engine(url)
        try:
            async with async_sessionmaker(engine)() as session:
                started = time.perf_counter()
                result = await schema.execute("{ slow }", context_value=_Context(session))
                assert time.perf_counter() - started < 10
                assert [e.extensions["code"] for e in result.errors or []] == ["DEADLINE_EXCEEDED"]
            async with async_sessionmaker(engine)() as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
                if database:
                    running = await session.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")
                    )
                    assert running.scalar_one() == 0
        finally:
            await engine.dispose()

    asyncio.run(main())


# --- every query of both clients passes the default limits ---------------------------------------------


OPERATION = re.compile(r"\s*(query|mutation)\b")


def query_strings(module: ModuleType) -> list[str]:
    """The GraphQL operations written in a module's source: string literals and f-strings (evaluated with the
    module's constants) that start with ``query`` or ``mutation``."""
    source = Path(module.__file__ or "").read_text()
    tree = ast.parse(source)
    parts = {
        id(p) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for p in ast.walk(node) if p is not node
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in parts:
            continue
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if not (isinstance(head, ast.Constant) and OPERATION.match(head.value)):
                continue
            value = eval(compile(ast.Expression(node), module.__file__ or "", "eval"), vars(module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        else:
            continue
        if OPERATION.match(value) and "{" in value:
            found.append(value)
    return found


def official_queries() -> list[str]:
    from adaptive_sdk.graphql_client import async_client, client

    return query_strings(client) + query_strings(async_client)


def our_queries() -> list[str]:
    modules = [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(adaptive_engine.sdk.__path__, "adaptive_engine.sdk.")
    ]
    return [q for module in modules for q in query_strings(module)]


class _StopBeforeExecution(SchemaExtension):
    """Ends each request once validated: only the limits are under test, not the resolvers."""

    def on_execute(self) -> Iterator[None]:
        self.execution_context.result = ExecutionResult(data=None, errors=None)
        yield


# Operations whose paged lists sit inside another paged list: at the largest page they ask for a million rows,
# which the cost limit refuses on purpose; they pass with the server's default page.
NESTED_PAGES = {"ListGroupedInteractions"}


def page_variables(query: str) -> dict[str, Any]:
    """The largest page the server serves for every CursorPageInput variable (the default one where pages
    nest)."""
    operation = next(d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode))
    size = DEFAULT_PAGE_SIZE if operation.name and operation.name.value in NESTED_PAGES else MAX_PAGE_SIZE
    return {
        v.variable.name.value: {"first": size}
        for v in operation.variable_definitions or ()
        if print_ast(v.type).rstrip("!") == "CursorPageInput"
    }


def test_every_client_query_passes_the_default_limits() -> None:
    official, ours = official_queries(), our_queries()
    assert len(official) >= 150 and len(ours) >= 70  # the extraction found them (a new query only adds)
    schema = build_schema(Settings())
    schema.extensions = (*schema.extensions, _StopBeforeExecution)
    queries = [*official, *ours, get_introspection_query()]

    async def refused(query: str, variables: dict[str, Any]) -> list[str]:
        result = await schema.execute(query, variable_values=variables)
        return [e.message for e in result.errors or [] if (e.extensions or {}).get("code") == "QUERY_TOO_COMPLEX"]

    async def main() -> list[tuple[str, str]]:
        failures = []
        for query in queries:
            for variables in ({}, page_variables(query)):
                failures += [(query[:80], message) for message in await refused(query, variables)]
        return failures

    assert asyncio.run(main()) == []
    # The test can fail: the largest page of nested pages is over the cost limit.
    grouped = next(q for q in official if "query ListGroupedInteractions" in q)
    assert asyncio.run(refused(grouped, {"page": {"first": MAX_PAGE_SIZE}}))
