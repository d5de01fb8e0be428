"""Regenerates the console's screenshots (docs/screenshots/*.png), shown in the README:

    make screenshots        # or: python -m tests.console.screenshots docs/screenshots

A fresh server with the sample data of the console tests, every page in the light theme and a few in the
dark one, in Debian's headless Chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.console.world import launch, make_sample, require_console_build
from tests.support import LiveServer, make_settings

VIEWPORT = {"width": 1280, "height": 800}


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    require_console_build()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data, LiveServer(make_settings(Path(data))) as server:
        sample = make_sample(server.base_url, server.api_key)
        uc = sample.use_case
        from adaptive_engine import Adaptive

        with Adaptive(server.base_url, api_key=server.api_key) as admin:
            admin.ab_tests.create("small-vs-large", sample.feedback_key, list(sample.models), traffic_split=0.5,
                                  use_case=uc)
        pages = [
            ("use-cases", "/use-cases", "Use cases"),
            ("use-case-overview", f"/use-cases/{uc}", "Support bot"),
            ("interactions", f"/use-cases/{uc}/interactions?label=topic%3Dbilling", "Interactions"),
            ("interaction-detail", f"/use-cases/{uc}/interactions/{sample.completion_ids[1]}", "Interaction"),
            ("ab-tests", f"/use-cases/{uc}/ab-tests", "A/B tests"),
            ("ab-test-detail", f"/use-cases/{uc}/ab-tests/small-vs-large", "small-vs-large"),
            ("users", "/settings/users", "Users"),
        ]
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for scheme in ("light", "dark"):
                context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT, color_scheme=scheme)
                page = context.new_page()
                page.goto("/sign-in")
                page.get_by_role("heading", name="Sign in to Adaptive Engine").wait_for()
                if scheme == "light":
                    page.screenshot(path=out / "sign-in.png")
                page.get_by_label("API key").fill(server.api_key)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("button", name="Sign out").wait_for()
                for name, path, heading in pages:
                    if scheme == "dark" and name not in ("use-case-overview", "interactions"):
                        continue
                    page.goto(path)
                    page.get_by_role("heading", name=heading, exact=True).wait_for()
                    page.wait_for_load_state("networkidle")
                    suffix = "-dark" if scheme == "dark" else ""
                    page.screenshot(path=out / f"{name}{suffix}.png", full_page=True)
                context.close()
            browser.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
