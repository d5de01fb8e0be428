"""Grader and dataset helpers: the prebuilt criteria and configs, and whether a dataset's rows give a grader or
a reward server what it reads (a real reward server on 127.0.0.1, real uploaded datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import NotFoundError
from tests.graders.reward_servers import RunningRewardServer


def _dataset(client: Adaptive, tmp_path: Path, key: str, rows: list[dict]) -> str:
    path = tmp_path / f"{key}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    client.datasets.upload(str(path), key)
    return key


def _add_env(client: Adaptive, url: str, key: str) -> None:
    reply = httpx.post(
        f"{client.base_url}/api/graphql",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json={
            "query": "mutation($i: RemoteEnvCreate!) { addRemoteEnv(input: $i) { key metadataSchema } }",
            "variables": {"i": {"url": url, "key": key}},
        },
    ).json()
    assert reply["data"]["addRemoteEnv"]["metadataSchema"], reply


def test_prebuilt_configs_and_criteria(client: Adaptive, use_case: str, chat_model: str, unique: str) -> None:
    configs = {c.key: c for c in client.graders.prebuilt_configs()}
    assert set(configs) == {"FAITHFULNESS", "ANSWER_RELEVANCY", "CONTEXT_RELEVANCY"}
    assert configs["FAITHFULNESS"].feedback_key == "faithfulness" and configs["FAITHFULNESS"].description
    # A prebuilt judge registers its criteria's metric; prebuiltCriteria then names it.
    client.graders.create.prebuilt_judge(key=f"ar-{unique}", type="ANSWER_RELEVANCY", judge_model=chat_model)
    criteria = {c.key: c for c in client.graders.prebuilt_criteria()}
    assert criteria["ANSWER_RELEVANCY"].feedback.key == "answer_relevancy"
    assert criteria["ANSWER_RELEVANCY"].name == configs["ANSWER_RELEVANCY"].name


def test_context_graders_need_context(
    client: Adaptive, use_case: str, chat_model: str, unique: str, tmp_path: Path
) -> None:
    with_context = _dataset(
        client,
        tmp_path,
        "ctx",
        [
            {
                "messages": [
                    {"role": "system", "content": "Paris is in France."},
                    {"role": "user", "content": "Where?"},
                ],
                "completion": "France",
            }
        ]
        * 3,
    )
    bare = _dataset(
        client,
        tmp_path,
        "bare",
        [
            {
                "messages": [{"role": "system", "content": "Facts."}, {"role": "user", "content": "q"}],
                "completion": "a",
            },
            {"prompt": "no context here", "completion": "a"},
        ],
    )
    client.graders.create.prebuilt_judge(key=f"faith-{unique}", type="FAITHFULNESS", judge_model=chat_model)
    client.graders.create.prebuilt_judge(key=f"rel-{unique}", type="ANSWER_RELEVANCY", judge_model=chat_model)
    ok = client.graders.validate_data_schema(grader_key=f"faith-{unique}", dataset=with_context)
    assert ok.valid and "3 rows" in ok.message
    refused = client.graders.validate_data_schema(grader_key=f"faith-{unique}", dataset=bare)
    assert not refused.valid and refused.message.startswith("row 2:") and "context" in refused.message
    assert client.graders.validate_data_schema(grader_key=f"rel-{unique}", dataset=bare).valid
    with pytest.raises(NotFoundError):
        client.graders.validate_data_schema(grader_key=f"faith-{unique}", dataset="missing")
    with pytest.raises(NotFoundError):
        client.graders.validate_data_schema(grader_key="missing", dataset=bare)


def test_reward_server_metadata_schema(
    client: Adaptive, use_case: str, unique: str, word_server: RunningRewardServer, tmp_path: Path
) -> None:
    _add_env(client, word_server.url, f"words-{unique}")
    good = _dataset(client, tmp_path, "good", [{"prompt": "q", "completion": "a", "metadata": {"expected": "a"}}] * 2)
    bad = _dataset(
        client,
        tmp_path,
        "bad",
        [
            {"prompt": "q", "completion": "a", "metadata": {"expected": "a"}},
            {"prompt": "q", "completion": "a", "metadata": {"wanted": "a"}},
        ],
    )
    fits = client.graders.validate_dataset_schema(remote_env=f"words-{unique}", dataset=good)
    assert fits.valid, fits.message
    misfit = client.graders.validate_dataset_schema(remote_env=f"words-{unique}", dataset=bad)
    assert not misfit.valid and misfit.message.startswith("row 2: metadata") and "expected" in misfit.message
    # A grader on that server checks the same schema.
    client.graders.create.external_endpoint(key=f"ext-{unique}", url=word_server.url, feedback_key=f"words-{unique}")
    assert not client.graders.validate_data_schema(grader_key=f"ext-{unique}", dataset=bad).valid
    assert client.graders.validate_data_schema(grader_key=f"ext-{unique}", dataset=good).valid
    with pytest.raises(NotFoundError):
        client.graders.validate_dataset_schema(remote_env=f"missing-{unique}", dataset=good)
