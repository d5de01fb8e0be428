"""Permission table rows of the console's sign-in routes (see tests/enforcement.py): any caller with a
working key may open, see and end console sessions of that key."""

from __future__ import annotations

from tests.enforcement import Case, rest

EVERYONE = ("viewer", "outsider", "editor")

CASES = [
    Case(("POST /api/v1/auth/session",), op=lambda c, w: rest(c, "POST", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
    Case(("GET /api/v1/auth/session",), op=lambda c, w: rest(c, "GET", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
    Case(("DELETE /api/v1/auth/session",), op=lambda c, w: rest(c, "DELETE", "/auth/session"), allowed_as=EVERYONE,
         denied_as=()),
]
