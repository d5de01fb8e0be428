"""The dataset pages in the browser: upload in parts with a progress bar (the chunked upload routes), the
server's message for a bad file (and nothing kept), rows page by page, download, delete; a viewer reads
but gets no control."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Console, sign_in

BIG_ROWS = 1300  # about 6.6 MB: two parts of 5 MB


def big_file(folder: Path) -> Path:
    path = folder / "faq-big.jsonl"
    with open(path, "w") as out:
        for i in range(BIG_ROWS):
            row = {"messages": [{"role": "user", "content": f"question {i + 1}"}], "completion": f"answer {i + 1} " + "x" * 5000,
                   "labels": {"n": str(i + 1)}}
            out.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def small(console: Console, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small preference dataset in the sample use case, made through the SDK."""
    path = tmp_path_factory.mktemp("data") / "prefs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"Say hi {i}", "chosen": "Hello!", "rejected": "Go away."})
                              for i in range(3)))
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        sdk.datasets.upload(str(path), "prefs", name="Preferences", use_case=console.sample.use_case)
    return "prefs"


def test_upload_in_parts_preview_download_and_delete(page: Any, console: Console, small: str, tmp_path: Path) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    sign_in(page, console.server.api_key, f"{base}/datasets")
    expect(page.get_by_role("row", name=re.compile("Preferences"))).to_contain_text("preference")
    page.get_by_role("button", name="Upload a dataset").click()
    form = page.get_by_role("form", name="Upload a dataset")

    # A bad line: the server's message, and no dataset (the parts are dropped).
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": "fine too"}\n{"prompt": 3}\n')
    form.get_by_label("JSONL file").set_input_files(str(bad))
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_role("alert")).to_contain_text("invalid dataset: line 3")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert [d.key for d in sdk.datasets.list(use_case=sample.use_case)] == [small]

    parts: list[str] = []
    page.on("request", lambda request: parts.append(request.url) if "/api/v1/upload/part" in request.url else None)
    path = big_file(tmp_path)
    form.get_by_label("JSONL file").set_input_files(str(path))
    form.get_by_label("Name").fill("FAQ (big)")
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_role("status")).to_have_text("Uploaded faq-big.", timeout=60_000)
    progress = form.get_by_role("progressbar", name="Upload progress")
    expect(progress).to_have_attribute("value", str(path.stat().st_size))
    assert [re.search(r"part_number=(\d+)", url).group(1) for url in parts] == ["1", "2"]
    row = page.get_by_role("row", name=re.compile(r"FAQ \(big\)"))
    expect(row).to_contain_text("1,300")
    expect(row).to_contain_text("prompt completion")

    # Rows page by page.
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="FAQ (big)")).to_be_visible()
    rows = page.get_by_role("region", name="Rows")
    expect(rows.get_by_text("1,300 in all")).to_be_visible()
    expect(rows.locator("tbody tr")).to_have_count(25)
    expect(rows.locator("tbody tr").first).to_contain_text("question 1")
    rows.get_by_role("button", name="Next →").click()
    expect(rows.locator("tbody tr").first).to_contain_text("question 26")
    expect(rows.locator("tbody tr").first).to_contain_text("n=26")
    rows.get_by_label("Per page").select_option("100")
    expect(rows.locator("tbody tr")).to_have_count(100)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    saved = tmp_path / "downloaded.jsonl"
    download.value.save_as(saved)
    assert saved.read_bytes() == path.read_bytes()

    page.get_by_role("button", name="Delete dataset").click()
    page.get_by_role("button", name="Keep it").click()
    expect(page.get_by_role("heading", name="FAQ (big)")).to_be_visible()
    page.get_by_role("button", name="Delete dataset").click()
    page.get_by_role("group", name="Confirm delete").get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile(f"{base}/datasets$"))
    expect(page.get_by_role("link", name="FAQ (big)")).to_have_count(0)
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert [d.key for d in sdk.datasets.list(use_case=sample.use_case)] == [small]


def test_viewer_reads_datasets_but_cannot_change_them(page: Any, console: Console, small: str) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    sign_in(page, sample.viewer_key, f"{base}/datasets")
    expect(page.get_by_role("link", name="Preferences")).to_be_visible()
    expect(page.get_by_role("button", name="Upload a dataset")).to_have_count(0)
    page.get_by_role("link", name="Preferences").click()
    rows = page.get_by_role("region", name="Rows")
    expect(rows.locator("tbody tr")).to_have_count(3)
    expect(rows.locator("tbody tr").first).to_contain_text("chosen Hello!")
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    expect(page.get_by_role("button", name="Delete dataset")).to_have_count(0)
    # The only buttons: the pager's.
    expect(page.get_by_role("main").get_by_role("button")).to_have_text(["← Previous", "Next →"])
    page.goto(f"/use-cases/{sample.empty_use_case}/datasets")
    expect(page.get_by_text("No datasets yet")).to_be_visible()
