"""Browser fixtures: one server with the console's build and sample data per module, Debian's Chromium,
and a fresh browser context per test that fails the test on any error in the page's console."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.console.world import Sample, launch, make_sample, require_console_build
from tests.support import LiveServer, make_settings


@dataclass
class Console:
    server: LiveServer
    sample: Sample


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    require_console_build()
    with LiveServer(make_settings(tmp_path_factory.mktemp("data"))) as server:
        yield Console(server, make_sample(server.base_url, server.api_key))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@dataclass
class Errors:
    """Errors the page logged; a test that provokes one on purpose takes it out with ``expect``."""

    seen: list[str] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        matching = [e for e in self.seen if re.search(pattern, e)]
        assert matching, f"expected an error matching {pattern!r}, saw {self.seen}"
        for error in matching:
            self.seen.remove(error)


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def page(chromium: Any, console: Console, errors: Errors) -> Iterator[Any]:
    context = chromium.new_context(base_url=console.server.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda message: errors.seen.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.seen.append(f"uncaught: {error}"))
    yield page
    context.close()
    assert errors.seen == [], f"errors in the page's console: {errors.seen}"


def sign_in(page: Any, key: str, path: str = "/") -> None:
    page.goto(path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
