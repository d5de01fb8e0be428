"""Count the real engine's root GraphQL fields this server implements.

The official client (``adaptive_sdk``, installed with the dev dependencies) carries the engine's root Query and
Mutation fields in ``graphql_client/custom_queries.py`` and ``custom_mutations.py``; this compares their names
with our schema's and prints the counts and what is missing.

    python scripts/engine_coverage.py
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from adaptive_engine.server.graphql.schema import build_schema

FIELD_NAME = re.compile(r"field_name='([A-Za-z0-9_]+)'")


def engine_fields(module: str) -> set[str]:
    spec = importlib.util.find_spec("adaptive_sdk")
    assert spec is not None and spec.submodule_search_locations, "install adaptive-sdk to compare"
    client = Path(list(spec.submodule_search_locations)[0]) / "graphql_client"
    return set(FIELD_NAME.findall((client / f"{module}.py").read_text()))


def main() -> None:
    queries, mutations = engine_fields("custom_queries"), engine_fields("custom_mutations")
    schema = build_schema()._schema
    ours_q, ours_m = set(schema.query_type.fields), set(schema.mutation_type.fields)
    have = len(queries & ours_q) + len(mutations & ours_m)
    print(
        f"engine root fields implemented: {have} of {len(queries) + len(mutations)} "
        f"(queries {len(queries & ours_q)}/{len(queries)}, mutations {len(mutations & ours_m)}/{len(mutations)})"
    )
    print("missing queries:", ", ".join(sorted(queries - ours_q)) or "none")
    print("missing mutations:", ", ".join(sorted(mutations - ours_m)) or "none")


if __name__ == "__main__":
    main()
