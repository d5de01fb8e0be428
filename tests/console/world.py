"""What the console tests and screenshots share: Debian's Chromium under Playwright, a server with the
console's build, and sample data made through our SDK."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from adaptive_engine import Adaptive
from adaptive_engine.server.console import default_console_dir

CHROMIUM = Path("/usr/bin/chromium")
# Debian's browser, never one downloaded by `playwright install`; nothing it does reaches the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_console_build() -> Path:
    folder = default_console_dir()
    if not (folder / "index.html").is_file():
        raise RuntimeError(f"the console is not built in {folder}: run `make console` (needs Node.js 20.19+ and npm)")
    if not CHROMIUM.exists():
        raise RuntimeError("Debian's chromium is missing: apt-get install chromium (.ci/run does it)")
    return folder


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


@dataclass
class Sample:
    use_case: str
    empty_use_case: str
    models: tuple[str, str]
    feedback_key: str
    viewer_key: str
    editor_key: str
    completion_ids: list[str]


# Recipes of the jobs and models pages (and their screenshots): a toy training that logs metrics, progress,
# log lines and an artifact, and one that registers a model trained from a base model.
TRAINER = '''
import json
import time
from typing import Literal
from pydantic import BaseModel, Field
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Lora(BaseModel):
    rank: int = Field(8, ge=1, le=256)

class Config(InputConfig):
    """Fits a toy model and reports how it went."""
    steps: int = Field(4, ge=1, le=20, description="training steps")
    learning_rate: float = Field(0.5, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    note: str | None = None
    shuffle: bool = True
    tags: list[str] = []
    weights: dict[str, float] = {}
    lora: Lora | None = None

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    print(f"training with {config.optimizer}, tags {config.tags}, lora {config.lora}", flush=True)
    for step in range(config.steps):
        loss = 2.0 / (step + 1)
        ctx.log_metrics(step, {"loss": loss, "reward": step * config.learning_rate})
        ctx.report_progress((step + 1) / config.steps, f"step {step + 1} of {config.steps}")
        print(f"step {step + 1} loss {loss:.3f}", flush=True)
    ctx.save_artifact("report.json", json.dumps({"steps": config.steps, "weights": config.weights}).encode())
    print("done", flush=True)
'''

TUNER = '''
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    dataset: str
    base_model: str
    output_model_key: str

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    folder = ctx.work_dir / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    ctx.register_model(folder, config.output_model_key, name="Support tuned", base_model=config.base_model)
'''


PROMPTS = [
    ("billing", "Why was I charged twice this month?", "I'm sorry about that: the second charge is a pending authorization and disappears within 3 days."),
    ("billing", "How do I get an invoice for my last order?", "Open Orders, pick the order and choose Download invoice."),
    ("shipping", "Where is my parcel?", "Your parcel left our warehouse yesterday; the tracking link is in your confirmation email."),
    ("shipping", "Can I change the delivery address?", "Yes, until the parcel ships: open the order and edit the address."),
    ("account", "I forgot my password.", "Use Forgot password on the sign-in page; the reset link is valid for one hour."),
]


def make_sample(base_url: str, admin_key: str, suffix: str = "", interactions: int = 32) -> Sample:
    """A use case with two models, a feedback key, labelled interactions with feedback, a viewer and an editor."""
    rng = random.Random(7)
    admin = Adaptive(base_url, api_key=admin_key)
    use_case = f"support-bot{suffix}"
    admin.use_cases.create(key=use_case, name="Support bot", description="Answers customer questions")
    empty = f"drafts{suffix}"
    admin.use_cases.create(key=empty, name="Drafts")
    models = (f"gpt-small{suffix}", f"gpt-large{suffix}")
    for i, key in enumerate(models):
        # An OpenAI-compatible endpoint nobody serves: the console only shows the registry, it calls no model.
        admin.models.add_external(name=key, key=key, external_model_id=key, api_key="sk-none", provider="open_ai",
                                  endpoint="http://127.0.0.1:9/v1")
        admin.models.attach(key, use_case=use_case, make_default=i == 0)
    feedback_key = f"helpful{suffix}"
    admin.feedback.register_key(feedback_key, kind="scalar", name="Helpful")
    admin.feedback.link(feedback_key, use_case=use_case)
    ids = []
    # Spread over the last week (every 5 hours), so charts have a history.
    now = datetime.now(timezone.utc)
    for i in range(interactions):
        topic, prompt, answer = PROMPTS[i % len(PROMPTS)]
        model = models[i % 2]
        value = round(min(1.0, max(0.0, rng.gauss(0.75 if model == models[1] else 0.6, 0.15))), 2)
        made = admin.interactions.create(
            messages=[{"role": "system", "content": "You are a helpful support agent."}, {"role": "user", "content": prompt}],
            completion=answer, model=model, use_case=use_case, labels={"topic": topic},
            feedbacks=[{"feedback_key": feedback_key, "value": value}] if i % 3 else None,
            created_at=(now - timedelta(hours=5 * (interactions - 1 - i))).isoformat(),
        )
        ids.append(str(made.completion_id))
    keys = {}
    for role in ("viewer", "editor"):
        email = f"{role}{suffix}@example.com"
        admin.users.create(email=email, name=role.capitalize(), teams_with_role=[("default", role)])
        keys[role] = admin.api_keys.create(name="console", user=email).key
    admin.close()
    return Sample(use_case, empty, models, feedback_key, keys["viewer"], keys["editor"], ids)
