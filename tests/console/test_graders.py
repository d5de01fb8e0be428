"""The grader pages in the browser: make an LLM judge (on a chat model served by a real OpenAI-compatible
server on 127.0.0.1) and a Python grader, try each on a sample completion and read the score and reasoning,
the server's message for bad code, live grading, delete; a viewer tries graders but changes nothing."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Console, sign_in

JUDGE_MODEL = "judge-model"
WORDS = '''def grade(messages, completion, metadata):
    words = len(completion.split())
    return {"score": min(words, 10) / 10, "reasoning": f"{words} words"}
'''


class JudgeHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that judges like a strict reviewer: an answer that apologises
    passes, any other fails."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = body["messages"][-1]["content"].rsplit("ANSWER", 1)[-1].lower()
        verdict = {"reasoning": "The answer apologises to the customer", "score": "PASS"} if "sorry" in answer \
            else {"reasoning": "The answer does not apologise", "score": "FAIL"}
        reply = {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": json.dumps(verdict)}}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def judge(console: Console) -> Iterator[str]:
    """The judge model in the registry, served by JudgeHandler."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), JudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        sdk.models.add_external(name=JUDGE_MODEL, key=JUDGE_MODEL, external_model_id="strict-reviewer", api_key="sk-judge",
                                provider="open_ai", endpoint=f"http://127.0.0.1:{server.server_port}/v1")
    yield JUDGE_MODEL
    server.shutdown()
    thread.join(timeout=10)


def test_judge_made_and_tried_in_the_browser(page: Any, console: Console, judge: str) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    sign_in(page, console.server.api_key, f"{base}/graders")
    expect(page.get_by_text("No graders yet")).to_be_visible()
    page.get_by_role("button", name="New grader").click()
    form = page.get_by_role("form", name="New grader")
    expect(form.get_by_label("Kind")).to_have_value("JUDGE")
    form.get_by_label("Grader key").fill("apologises")
    form.get_by_label("Name").fill("Apologises")
    form.get_by_label("Feedback key").fill("apology")
    form.get_by_label("Judge model").select_option(judge)
    form.get_by_label("Criterion").fill("The answer apologises for the trouble.")
    form.get_by_role("button", name="Create grader").click()
    expect(page).to_have_url(re.compile(f"{base}/graders/apologises$"))
    expect(page.get_by_role("heading", name="Apologises")).to_be_visible()
    expect(page.get_by_text("The answer apologises for the trouble.")).to_be_visible()

    trial = page.get_by_role("form", name="Try the grader")
    trial.get_by_label("User message").fill("Where is my parcel?")
    trial.get_by_label("Completion to grade").fill("Sorry for the wait: it ships today.")
    trial.get_by_role("button", name="Grade").click()
    result = page.get_by_role("status", name="Result")
    expect(result).to_contain_text("Score1")
    expect(result).to_contain_text("The answer apologises to the customer")
    trial.get_by_label("Completion to grade").fill("It ships today.")
    trial.get_by_role("button", name="Grade").click()
    expect(result).to_contain_text("Score0")
    expect(result).to_contain_text("The answer does not apologise")
    trial.get_by_label("Metadata").fill("{not json")
    trial.get_by_role("button", name="Grade").click()
    expect(page.get_by_role("alert")).to_contain_text("Metadata is not valid JSON")
    trial.get_by_label("Metadata").fill("")

    live = page.get_by_role("form", name="Live grading")
    live.get_by_label("Share of new live completions to grade (%)").fill("25")
    live.get_by_role("button", name="Save").click()
    expect(page.get_by_text("25% of new completions")).to_be_visible()
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        grader = sdk.graders.get(grader_key="apologises", use_case=sample.use_case)
        assert grader.grader_type == "JUDGE" and grader.metric.key == "apology" and grader.online_sample_rate == 0.25
    page.goto(f"{base}/graders")
    row = page.get_by_role("row", name=re.compile("Apologises"))
    expect(row).to_contain_text(judge)
    expect(row).to_contain_text("25%")


def test_python_grader_bad_code_try_and_delete(page: Any, console: Console) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    sign_in(page, console.server.api_key, f"{base}/graders")
    page.get_by_role("button", name="New grader").click()
    form = page.get_by_role("form", name="New grader")
    form.get_by_label("Kind").select_option("CUSTOM")
    form.get_by_label("Grader key").fill("brevity")
    form.get_by_label("Code").fill("def grade(:\n")
    form.get_by_role("button", name="Create grader").click()
    expect(form.get_by_role("alert")).to_contain_text("does not parse")
    form.get_by_label("Code").fill(WORDS)
    form.get_by_label("Description").fill("counts words")
    form.get_by_role("button", name="Create grader").click()
    expect(page.get_by_role("heading", name="brevity")).to_be_visible()
    expect(page.get_by_text("counts words")).to_be_visible()
    trial = page.get_by_role("form", name="Try the grader")
    trial.get_by_label("User message").fill("Hi")
    trial.get_by_label("Completion to grade").fill("one two three")
    trial.get_by_role("button", name="Grade").click()
    result = page.get_by_role("status", name="Result")
    expect(result).to_contain_text("Score0.300")
    expect(result).to_contain_text("3 words")

    page.get_by_role("button", name="Delete grader").click()
    page.get_by_role("group", name="Confirm delete").get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile(f"{base}/graders$"))
    expect(page.get_by_role("link", name="brevity")).to_have_count(0)
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert "brevity" not in {g.key for g in sdk.graders.list(use_case=sample.use_case)}


def test_viewer_tries_a_grader_but_changes_nothing(page: Any, console: Console) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        sdk.graders.create.custom(key="wordy", feedback_key="wordiness", code=WORDS, use_case=sample.use_case)
    sign_in(page, sample.viewer_key, f"{base}/graders")
    expect(page.get_by_role("button", name="New grader")).to_have_count(0)
    page.get_by_role("link", name="wordy").click()
    expect(page.get_by_role("button", name="Delete grader")).to_have_count(0)
    expect(page.get_by_role("form", name="Live grading")).to_have_count(0)
    trial = page.get_by_role("form", name="Try the grader")
    trial.get_by_label("User message").fill("Hi")
    trial.get_by_label("Completion to grade").fill("a b c d e")
    trial.get_by_role("button", name="Grade").click()
    expect(page.get_by_role("status", name="Result")).to_contain_text("5 words")
    expect(page.get_by_role("main").get_by_role("button")).to_have_text(["Grade"])
