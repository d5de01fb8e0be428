"""Malformed input is a 400 INVALID_INPUT that names the problem, stores nothing, and leaves the client's
keep-alive connection open (every case of a test runs on one connection: the client's address must not
change). Cases from the attack of issue 13: a NUL in text fields (PostgreSQL cannot store it), lone
surrogates in names that reach the database, JSON nested 100,000 deep, and huge arrays."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import NotFoundError
from tests.support import LiveServer, make_settings

NUL_REASON = "text fields cannot contain the NUL character (U+0000)"
SURROGATE_REASON = "lone surrogates (U+D800 to U+DFFF)"
DEEP = b"[" * 100_000 + b"]" * 100_000


class Connection:
    """One httpx client (one keep-alive connection) that remembers the local address of every answer."""

    def __init__(self, server: LiveServer) -> None:
        self.client = httpx.Client(
            base_url=server.base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {server.api_key}"},
            limits=httpx.Limits(max_connections=1),
        )
        self.addresses: set[object] = set()

    def send(self, method: str, path: str, body: bytes | None = None, **kwargs: object) -> httpx.Response:
        headers = {"content-type": "application/json"} if body is not None else {}
        r = self.client.request(method, path, content=body, headers=headers, **kwargs)
        self.addresses.add(r.extensions["network_stream"].get_extra_info("client_addr"))
        assert r.headers.get("connection") != "close", (path, r.text)
        return r

    def refused(self, method: str, path: str, body: bytes | None, reason: str) -> None:
        r = self.send(method, path, body)
        assert r.status_code == 400, (path, body[:200] if body else None, r.text[:300])
        if path.startswith("/api/graphql"):
            [error] = r.json()["errors"]
            message, code = error["message"], error["extensions"]["code"]
        else:
            message, code = r.json()["error"]["message"], r.json()["error"]["code"]
        assert code == "INVALID_INPUT" and reason in message, (path, message)

    def graphql_refused(self, query: str, variables: dict[str, object] | None, reason: str) -> None:
        """Refused by GraphQL: an HTTP 400 when the request's JSON is refused, or an INVALID_INPUT error
        (before execution: no data) when the document's literals are."""
        r = self.send("POST", "/api/graphql", json.dumps({"query": query, "variables": variables}).encode())
        assert r.status_code in (200, 400), r.text
        body = r.json()
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT" and reason in error["message"], body

    def still_answers(self) -> None:
        assert self.send("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000/logs").status_code == 404
        assert len(self.addresses) == 1, f"the connection was dropped: answers came on {self.addresses}"


@pytest.fixture
def conn(server: LiveServer) -> Iterator[Connection]:
    connection = Connection(server)
    try:
        yield connection
    finally:
        connection.client.close()


@pytest.fixture
def use_case(client: Adaptive, unique: str) -> str:
    key = f"mal-{unique}"
    client.use_cases.create(key)
    client.feedback.register_key(f"ok-{unique}", kind="bool")
    return key


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: a NUL travels as the \u0000 escape


def test_nul_in_any_text_field_is_refused_by_name_and_stores_nothing(
    server: LiveServer, client: Adaptive, conn: Connection, use_case: str, unique: str
) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ok = conn.send(
        "POST", "/api/v1/interactions", dumps({"use_case": use_case, "messages": messages, "completion": "Paris."})
    )
    assert ok.status_code == 201, ok.text
    cid, sid = ok.json()["completion_id"], ok.json()["session_id"]
    metric = f"ok-{unique}"
    bad_messages = [{"role": "user", "content": "What is\u0000 the capital?"}]
    cases: list[tuple[str, object]] = [
        ("/api/v1/interactions", {"use_case": use_case, "messages": messages, "completion": "Par\u0000is."}),
        ("/api/v1/interactions", {"use_case": use_case, "messages": bad_messages, "completion": "Paris."}),
        ("/api/v1/interactions", {"use_case": f"mal\u0000{unique}", "messages": messages, "completion": "Paris."}),
        (
            "/api/v1/interactions",
            {"use_case": use_case, "messages": messages, "completion": "Paris.", "labels": {"k\u0000": "v"}},
        ),
        # A batch is refused whole: its valid first item is not stored either.
        (
            "/api/v1/interactions",
            [
                {"use_case": use_case, "messages": messages, "completion": "Lyon."},
                {"use_case": use_case, "messages": messages, "completion": "Nice.", "labels": {"k": "\u0000"}},
            ],
        ),
        ("/api/v1/feedback", {"completion_id": cid, "metric": metric, "value": True, "details": "right\u0000"}),
        (
            "/api/v1/comparison",
            {
                "metric": metric,
                "preferred_completion": cid,
                "other_completion": {"text": "Ly\u0000on.", "model": "m"},
                "use_case": use_case,
            },
        ),
        ("/api/v1/outcome", {"session_id": sid, "metric": f"{metric}\u0000", "value": 1}),
        ("/api/v1/chat/completions", {"model": use_case, "messages": bad_messages}),
        ("/api/v1/completions", {"model": use_case, "prompt": "a\u0000"}),
        ("/api/v1/embeddings", {"model": use_case, "input": ["a", "b\u0000"]}),
        ("/api/v1/graders/grade", {"use_case": use_case, "grader": "g\u0000", "samples": []}),
        ("/api/v1/upload/init", {"total_parts_count": 1, "metadata": {"name": "\u0000"}}),
    ]
    for path, body in cases:
        conn.refused("POST", path, dumps(body), NUL_REASON)
    conn.refused("GET", "/api/v1/datasets/x/download?use_case=%00", None, NUL_REASON)
    conn.refused("GET", "/api/v1/jobs/%00/logs", None, NUL_REASON)

    # GraphQL: in a literal of the document, in a variable, in a key of a JSON variable.
    conn.graphql_refused(
        f'mutation {{ createUseCase(input: {{name: "a\\u0000", key: "nul-a-{unique}"}}) {{ id }} }}', None, NUL_REASON
    )
    conn.graphql_refused(
        "mutation($n: String!, $k: String!) { createUseCase(input: {name: $n, key: $k}) { id } }",
        {"n": "b\u0000", "k": f"nul-b-{unique}"},
        NUL_REASON,
    )
    conn.graphql_refused(
        "mutation($k: String!, $n: String!) { createTeam(input: {key: $k, name: $n}) { id } }",
        {"k": f"nul-t-{unique}", "n": "team\u0000"},
        NUL_REASON,
    )
    conn.still_answers()

    for key in (f"nul-a-{unique}", f"nul-b-{unique}"):
        with pytest.raises(NotFoundError):
            client.use_cases.get(key)
    assert f"nul-t-{unique}" not in {t.key for t in client.teams.list()}
    listed = client.interactions.list(use_case=use_case)
    assert [str(n.id) for n in listed.nodes] == [cid]
    logged = client.interactions.get(cid, use_case=use_case)
    assert logged.direct_feedbacks == [] and logged.comparison_feedbacks == []


def test_lone_surrogates_are_refused(conn: Connection, use_case: str) -> None:
    # Written as JSON escapes (\ud800 alone, \udc00 first) and as the raw UTF-8 bytes of a surrogate.
    cases = [
        (
            "/api/v1/chat/completions",
            b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
            SURROGATE_REASON,
        ),
        ("/api/v1/embeddings", b'{"model": "\\udc00x", "input": "hi"}', SURROGATE_REASON),
        ("/api/v1/interactions", b'{"use_case": "\\ud800", "completion": "a", "messages": []}', SURROGATE_REASON),
        (
            "/api/v1/graders/grade",
            b'{"use_case": "' + use_case.encode() + b'", "grader": "\\udc00", "samples": []}',
            SURROGATE_REASON,
        ),
        (
            "/api/v1/feedback",
            b'{"completion_id": "00000000-0000-0000-0000-000000000000", "metric": "\xed\xa0\x80", "value": 1}',
            "not valid UTF-8",
        ),
    ]
    for path, body, reason in cases:
        conn.refused("POST", path, body, reason)
    graphql = (
        b'{"query": "mutation($n: String!) { createUseCase(input: {name: $n, key: \\"s\\"}) { id } }",'
        b' "variables": {"n": "\\ud800"}}'
    )
    conn.refused("POST", "/api/graphql", graphql, SURROGATE_REASON)
    conn.still_answers()


def test_deep_json_is_refused_at_the_nesting_limit(conn: Connection, use_case: str, unique: str) -> None:
    limit = 64
    for path in (
        "/api/v1/interactions",
        "/api/v1/feedback",
        "/api/v1/chat/completions",
        "/api/v1/graders/grade",
        "/api/v1/upload/init",
        "/api/v1/jobs/00000000-0000-0000-0000-000000000000/progress",
    ):
        conn.refused("POST", path, DEEP, f"nests deeper than {limit} levels")
    conn.refused(
        "POST",
        "/api/graphql",
        b'{"query": "{ __typename }", "variables": {"v": ' + DEEP + b"}}",
        f"nests deeper than {limit} levels",
    )

    def nested(levels: int) -> object:  # objects ``levels`` deep; the body around it is one more level
        value: object = "x"
        for _ in range(levels):
            value = {"a": value}
        return value

    # Under the parser's own ceiling, over ours: refused by the check, at the place it happens.
    conn.refused(
        "POST",
        "/api/v1/upload/init",
        dumps({"total_parts_count": 1, "metadata": nested(limit)}),
        f"JSON nests deeper than {limit} levels (at metadata.a.a",
    )
    conn.refused(
        "POST",
        "/api/graphql",
        dumps({"query": "{ __typename }", "variables": {"v": nested(limit)}}),
        f"JSON nests deeper than {limit} levels",
    )
    # At the limit: accepted.
    r = conn.send("POST", "/api/v1/upload/init", dumps({"total_parts_count": 1, "metadata": nested(limit - 1)}))
    assert r.status_code == 200, r.text
    conn.still_answers()


def test_huge_arrays_are_refused(client: Adaptive, conn: Connection, use_case: str) -> None:
    many = [{"role": "user", "content": "hi"}] * 10_001
    conn.refused(
        "POST",
        "/api/v1/interactions",
        dumps({"use_case": use_case, "messages": many, "completion": "a"}),
        "an array or object has more than 10000 items (at messages)",
    )
    conn.refused(
        "POST",
        "/api/v1/embeddings",
        dumps({"model": use_case, "input": ["a"] * 10_001}),
        "more than 10000 items (at input)",
    )
    conn.refused(
        "POST",
        "/api/graphql",
        dumps({"query": "{ __typename }", "variables": {"ids": list(range(10_001))}}),
        "more than 10000 items (at variables.ids)",
    )
    conn.still_answers()
    assert client.interactions.list(use_case=use_case).total_count == 0


def test_an_unexpected_exception_is_the_internal_envelope_on_a_kept_connection(tmp_path) -> None:
    # A route that fails (a fault planted for this test): the answer is our INTERNAL envelope, its details
    # stay in the log, and the connection serves the next request.
    live = LiveServer(make_settings(tmp_path))

    async def fails() -> None:
        raise RuntimeError("secret detail")

    live.app.add_api_route("/api/v1/test-fault", fails, methods=["GET"])
    with live:
        conn = Connection(live)
        try:
            for _ in range(2):
                r = conn.send("GET", "/api/v1/test-fault")
                assert r.status_code == 500
                assert r.json() == {
                    "error": {"message": "Internal server error", "type": "server_error", "code": "INTERNAL"}
                }
            conn.still_answers()
        finally:
            conn.client.close()


def test_the_openapi_document_declares_the_data_plane_request_bodies(server: LiveServer) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json", headers={"Authorization": f"Bearer {server.api_key}"}).json()
    for path in (
        "/interactions",
        "/feedback",
        "/comparison",
        "/outcome",
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/graders/grade",
    ):
        body = doc["paths"][f"/api/v1{path}"]["post"]["requestBody"]
        assert body["required"] is True and "application/json" in body["content"], path
    assert doc["components"]["schemas"]["AddInteractionsRequest"]["required"] == ["use_case", "completion"]


def test_every_data_plane_route_reads_its_input_through_the_checks(tmp_path) -> None:
    # A router without `route_class=CheckedRoute` would leave its routes' bodies to FastAPI's own decoding.
    from adaptive_engine.server.app import create_app
    from adaptive_engine.server.auth.guard import iter_routes
    from adaptive_engine.server.rest.json_input import CheckedRoute

    app = create_app(make_settings(tmp_path))
    routes = [(path, route) for path, _, _, route in iter_routes(app) if path.startswith("/api/v1/")]
    assert len(routes) > 10
    assert [path for path, route in routes if not isinstance(route, CheckedRoute)] == []


def test_graphql_values_our_scalars_cannot_parse_are_invalid_input(conn: Connection, use_case: str) -> None:
    # Found by schemathesis: a scalar parser's ValueError was INTERNAL, and a string where a file belongs
    # reached the resolver's read().
    query = (
        f'{{ completions(filter: {{useCase: "{use_case}", timerange: {{from: "not a time", to: 1}}}}) {{'
        " totalCount } }"
    )
    conn.graphql_refused(query, None, "Invalid isoformat string")
    conn.graphql_refused(
        f'mutation {{ createCustomRecipe(useCase: "{use_case}", input: {{name: "r"}}, file: "main.py") {{ id }} }}',
        None,
        "a file is expected here, sent as a multipart upload",
    )
    conn.still_answers()
