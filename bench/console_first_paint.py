"""First paint of every console page on loopback, against the 1.5 s target (issue 14), in Debian's headless
Chromium (Playwright) against a server process with the sample data of the console's screenshots.

    PYTHONPATH=src python bench/console_first_paint.py [--repeat 3]

Per page, from the browser's own timings (Navigation and Paint Timing): first contentful paint, DOMContentLoaded,
and "ready" (the page's heading shown, i.e. its data asked through the API and drawn), each the median of
``--repeat`` visits: cold (a new browser context: nothing cached but the session cookie) and warm (the same
page again in that context). Needs the console built (`make console`) and the chromium package.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from server_process import ServerProcess  # noqa: E402

from tests.console.screenshots import SETTINGS, console_pages, make_more  # noqa: E402
from tests.console.world import launch, make_sample, require_console_build  # noqa: E402
from tests.integrations.receivers import HttpReceiver  # noqa: E402

KEY = "bench-admin-key"
TARGET_MS = 1500.0
# The screenshots' server settings, as the server process's environment.
ENV = {
    "ADAPTIVE_BUNDLED_MODELS": "false",
    "ADAPTIVE_BUILTIN_RECIPES": "false",
    **{f"ADAPTIVE_{name.upper()}": str(value) for name, value in SETTINGS.items()},
}
# Checked at every animation frame in the page itself: "ready" is when the heading is first there.
READY = """(heading) => {
  const shown = [...document.querySelectorAll("h1, h2")].some((h) => h.textContent.trim() === heading);
  return shown ? performance.now() : null;
}"""
TIMINGS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return { fcp: paint ? paint.startTime : null, dcl: nav.domContentLoadedEventEnd };
}"""


@dataclass
class Server:
    """What the sample makers need of a server."""

    base_url: str
    api_key: str


def visit(page, path: str, heading: str) -> dict[str, float]:
    page.goto(path, wait_until="commit")
    ready = page.wait_for_function(READY, arg=heading, polling="raf").json_value()
    return {**page.evaluate(TIMINGS), "ready": ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    require_console_build()
    with (
        tempfile.TemporaryDirectory() as data,
        HttpReceiver() as receiver,
        ServerProcess(Path(data) / "server", KEY, env=ENV) as process,
    ):
        server = Server(process.url, KEY)
        sample = make_sample(server.base_url, server.api_key)
        ids = make_more(server, sample, Path(data), receiver)  # type: ignore[arg-type]
        pages = console_pages(sample, ids)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            signed = browser.new_context(base_url=server.base_url)
            page = signed.new_page()
            page.goto("/sign-in")
            page.get_by_label("API key").fill(KEY)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name="Sign out").wait_for()
            state = signed.storage_state()
            signed.close()
            print(
                f"console first paint: {len(pages)} pages, median of {args.repeat} visits each, target < "
                f"{TARGET_MS:.0f} ms (first contentful paint)"
            )
            print(f"{'page':<20} {'cold FCP':>9} {'cold DCL':>9} {'cold ready':>11} {'warm FCP':>9} {'warm ready':>11}")
            worst = 0.0
            for name, path, heading, _ in pages:
                cold, warm = [], []
                for _ in range(args.repeat):
                    context = browser.new_context(base_url=server.base_url, storage_state=state)
                    tab = context.new_page()
                    cold.append(visit(tab, path, heading))
                    warm.append(visit(tab, path, heading))
                    context.close()

                def med(runs: list[dict[str, float]], key: str) -> float:
                    return statistics.median(r[key] for r in runs if r[key] is not None)

                worst = max(worst, med(cold, "fcp"))
                print(
                    f"{name:<20} {med(cold, 'fcp'):7.0f}ms {med(cold, 'dcl'):7.0f}ms {med(cold, 'ready'):9.0f}ms "
                    f"{med(warm, 'fcp'):7.0f}ms {med(warm, 'ready'):9.0f}ms",
                    flush=True,
                )
            browser.close()
    print(
        f"slowest cold first contentful paint: {worst:.0f} ms ({'ok' if worst < TARGET_MS else 'OVER'} against "
        f"{TARGET_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
