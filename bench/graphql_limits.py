"""How fast the GraphQL limits refuse: the 2,000-alias query of issue 13 (it kept the server busy for 48 s
before the limits) and the other refused shapes, against a trivial accepted query, on one server with the
default settings.

    PYTHONPATH=src python bench/graphql_limits.py [--rounds 20] [--database-url URL]

Prints the median and worst wall time of each request as the client sees it (HTTP included), the code
and the limit named.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_process import ServerProcess  # noqa: E402

KEY = "bench-graphql-limits-key"
QUERIES = {
    "trivial (accepted)": "{ me { email } }",
    "2,000 aliased completions": "{ "
    + " ".join(f'a{i}: completions(filter: {{useCase: "x"}}) {{ totalCount }}' for i in range(2000))
    + " }",
    "150 aliases": "{ " + " ".join(f"a{i}: me {{ email }}" for i in range(150)) + " }",
    "depth 40": "{ models { " + "backbone { " * 40 + "key" + " }" * 40 + " } }",
    "1,000 x 1,000 page": (
        '{ completionsGrouped(groupBy: MODEL, filter: {useCase: "x"}, page: {first: 1000}) { nodes {'
        " completions(page: {first: 1000}) { nodes { id completion chatMessages { role content } } } } } }"
    ),
    "fragment bomb (2^40)": "query { ...F0 } "
    + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    + " fragment F40 on Query { me { email } }",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data,
        ServerProcess(data, KEY, database_url=args.database_url) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as http,
    ):
        print(f"{'request':<28} {'median ms':>10} {'worst ms':>10}  answer")
        for name, query in QUERIES.items():
            http.post("/api/graphql", json={"query": query})  # warm-up
            times, body = [], {}
            for _ in range(args.rounds):
                started = time.perf_counter()
                body = http.post("/api/graphql", json={"query": query}).json()
                times.append((time.perf_counter() - started) * 1000)
            error = (body.get("errors") or [{}])[0]
            answer = "data" if not error else f"{error['extensions']['code']}: {error['message'][:70]}"
            print(f"{name:<28} {statistics.median(times):>10.1f} {max(times):>10.1f}  {answer}")


if __name__ == "__main__":
    main()
