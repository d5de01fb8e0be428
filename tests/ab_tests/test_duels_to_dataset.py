"""An A/B test's preference duels become a PREFERENCE dataset in one call (createDatasetFromFilters with the
campaign as filter), ready for the dpo recipe."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ab_tests.support import make_setup

MESSAGES = [{"role": "user", "content": "How do I reset my password?"}]


def test_duels_of_a_campaign_become_a_preference_dataset(ab_server, ab_client, unique: str, tmp_path: Path) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"duel-{unique}"
    ab_client.ab_tests.create(key, s.metrics["pref"], s.models, feedback_type="preference", use_case=s.use_case)
    for i in range(4):
        ids = [
            ab_client.interactions.create(
                messages=MESSAGES,
                completion=f"answer {i} of {model}",
                model=model,
                ab_campaign=key,
                use_case=s.use_case,
            ).completion_id
            for model in s.models
        ]
        # A tie is no preference: left out of the dataset.
        ab_client.feedback.log_preference(
            s.metrics["pref"], ids[1], ids[0], use_case=s.use_case, tied="good" if i == 3 else None
        )
    # Traffic of no campaign, with a preference too: not part of the campaign's dataset.
    outside = [
        ab_client.interactions.create(
            messages=MESSAGES, completion=f"outside {j}", model=s.models[0], use_case=s.use_case
        ).completion_id
        for j in range(2)
    ]
    ab_client.feedback.log_preference(s.metrics["pref"], outside[0], outside[1], use_case=s.use_case)

    dataset = ab_client.datasets.create_from_filters(
        f"dpo-{unique}", "PREFERENCE", filters={"ab_campaign": key}, use_case=s.use_case
    )
    assert dataset.kind == "PREFERENCE" and dataset.records == 3
    path = ab_client.datasets.download(f"dpo-{unique}", str(tmp_path / "d.jsonl"), use_case=s.use_case)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert sorted(r["chosen"] for r in rows) == [f"answer {i} of {s.models[1]}" for i in range(3)]
    assert all(r["rejected"].endswith(s.models[0]) and r["messages"] == MESSAGES for r in rows)
