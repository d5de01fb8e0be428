"""Permission table rows of the console's sign-in routes (see tests/enforcement.py): any caller with a
working key may open, see and end console sessions of that key; and of the job log stream the console
follows (a reader of the job's use case may, like the log itself)."""

from __future__ import annotations

from tests.enforcement import Case, gql, rest
from tests.identity.enforcement_cases_jobs import _pick

EVERYONE = ("viewer", "outsider", "editor")

CASES = [
    Case(("POST /api/v1/auth/session",), op=lambda c, w: rest(c, "POST", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
    Case(("GET /api/v1/auth/session",), op=lambda c, w: rest(c, "GET", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
    Case(("DELETE /api/v1/auth/session",), op=lambda c, w: rest(c, "DELETE", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
    # The job of the world has ended: its stream sends the log and ends.
    Case(("GET /api/v1/jobs/{job_id}/logs/stream",),
         on_use_case=lambda c, w, uc: rest(c, "GET", f"/jobs/{_pick(w, uc, 'job')}/logs/stream", raw=True),
         allowed_as=("viewer",), denied_as=()),
    Case(("Query.use_cases_page",),
         op=lambda c, w: gql(c, "query { useCasesPage(page: {first: 5}) { totalCount nodes { key } } }"),
         allowed_as=("viewer", "outsider"), denied_as=()),
]
