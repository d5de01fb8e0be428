"""The use cases list pages and searches on the server (useCasesPage): 25 a page, oldest first, the count of
all that match, a search on key or name; bad paging is refused by name."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ValidationError
from tests.console.conftest import Console, sign_in
from tests.enforcement import gql

BULK = 30
PAGE = "query P($page: CursorPageInput!, $search: String) { useCasesPage(page: $page, search: $search) {" \
       " totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { key name } } }"


@pytest.fixture(scope="module")
def bulk(console: Console) -> list[str]:
    keys = [f"bulk-{i:02d}" for i in range(BULK)]
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        for i, key in enumerate(keys):
            sdk.use_cases.create(key=key, name=f"Bulk desk {i:02d}" if i % 2 else f"Queue {i:02d}")
    return keys


def test_the_api_pages_and_searches(server: Any) -> None:
    """On SQLite and PostgreSQL (the shared ``server``), with use cases of this test only in its searches."""
    tag = uuid.uuid4().hex[:6]
    with Adaptive(server.base_url, api_key=server.api_key) as sdk:
        mine = [f"pg-{tag}-{i:02d}" for i in range(12)]
        for i, key in enumerate(mine):
            sdk.use_cases.create(key=key, name=f"Desk {tag} {i:02d}" if i % 2 else f"Queue {tag} {i:02d}")
        everything = [u.key for u in sdk.use_cases.list()]
        first = gql(sdk, PAGE, {"page": {"first": 5}})["useCasesPage"]
        assert first["totalCount"] == len(everything)
        assert [n["key"] for n in first["nodes"]] == everything[:5]
        assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
        search = {"search": f"pg-{tag}"}
        one = gql(sdk, PAGE, {"page": {"first": 5}, **search})["useCasesPage"]
        two = gql(sdk, PAGE, {"page": {"first": 5, "after": one["pageInfo"]["endCursor"]}, **search})["useCasesPage"]
        assert [n["key"] for n in one["nodes"] + two["nodes"]] == mine[:10] and two["totalCount"] == 12
        back = gql(sdk, PAGE, {"page": {"last": 5, "before": two["pageInfo"]["startCursor"]}, **search})["useCasesPage"]
        assert [n["key"] for n in back["nodes"]] == mine[:5]
        # The search matches key or name, any case; LIKE's wildcards are plain characters.
        found = gql(sdk, PAGE, {"page": {"first": 100}, "search": f"DESK {tag.upper()}"})["useCasesPage"]
        assert [n["key"] for n in found["nodes"]] == [k for i, k in enumerate(mine) if i % 2]
        assert gql(sdk, PAGE, {"page": {"first": 5}, "search": f"pg-{tag}-0"})["useCasesPage"]["totalCount"] == 10
        assert gql(sdk, PAGE, {"page": {"first": 5}, "search": f"pg_{tag}"})["useCasesPage"]["totalCount"] == 0
        for page, named in (({"first": 5, "offset": 5}, "offset"), ({"first": 5000}, "first"),
                            ({"first": 5, "after": "not-a-cursor"}, "cursor"), ({"first": 5, "last": 5}, "first or last")):
            with pytest.raises(ValidationError, match=named):
                gql(sdk, PAGE, {"page": page})
        # Only the use cases one can see, counted the same way: a member of another team sees its one.
        sdk.teams.create(key=f"elsewhere-{tag}")
        sdk.use_cases.create(key=f"elsewhere-{tag}", team=f"elsewhere-{tag}")
        email = f"other-{tag}@example.com"
        sdk.users.create(email=email, name="other", teams_with_role=[(f"elsewhere-{tag}", "editor")])
        other_key = sdk.api_keys.create(name="other", user=email).key
    with Adaptive(server.base_url, api_key=other_key) as other:
        seen = gql(other, PAGE, {"page": {"first": 100}})["useCasesPage"]
        assert seen["totalCount"] == 1 and [n["key"] for n in seen["nodes"]] == [f"elsewhere-{tag}"]
        assert gql(other, PAGE, {"page": {"first": 100}, **search})["useCasesPage"]["totalCount"] == 0


def test_the_list_pages_and_searches_on_the_server(page: Any, console: Console, bulk: list[str]) -> None:
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        total = len(sdk.use_cases.list())
    sign_in(page, console.server.api_key, "/use-cases")
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_contain_text(f"{total} in all")
    expect(page.get_by_role("row", name=re.compile("Support bot"))).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(25)
    pager.get_by_role("button", name="Next →").click()
    expect(page.locator("tbody tr")).to_have_count(total - 25)
    expect(page.get_by_role("link", name="Support bot")).to_have_count(0)
    expect(page.get_by_role("link", name=f"Bulk desk {BULK - 1:02d}")).to_be_visible()
    pager.get_by_role("button", name="← Previous").click()
    expect(page.get_by_role("link", name="Support bot")).to_be_visible()
    pager.get_by_label("Per page").select_option("50")
    expect(page.locator("tbody tr")).to_have_count(total)
    expect(pager.get_by_role("button", name="Next →")).to_be_disabled()
    # The search goes to the server and comes back to the first page; it is kept in the URL.
    page.get_by_label("Find").fill("queue")
    expect(page.get_by_text(f"{BULK // 2} in all")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=queue"))
    expect(page.get_by_role("link", name="Bulk desk 01")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Find")).to_have_value("queue")
    expect(page.get_by_text(f"{BULK // 2} in all")).to_be_visible()
    page.get_by_label("Find").fill("nothing like this")
    expect(page.get_by_text("No use case matches")).to_be_visible()
