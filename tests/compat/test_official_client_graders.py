"""The official adaptive-sdk client's graders.* against our server."""

from __future__ import annotations

import pytest

from tests.graders.conftest import chat_model, word_server  # noqa: F401 - fixtures

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server, unique):
    client = adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)
    client.use_cases.create(key=f"offgr-{unique}", name="Official graders")
    client.set_default_use_case(f"offgr-{unique}")
    return client


def test_official_graders_lifecycle(official, word_server, chat_model, unique) -> None:  # noqa: F811
    remote = official.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"w-{unique}")
    assert remote.grader_type.value == "REMOTE" and remote.grader_config.url == word_server.url
    assert remote.metric.key == f"w-{unique}" and remote.updated_at > 0
    custom = official.graders.create.custom(key="mine", feedback_key=f"c-{unique}", description="by a recipe")
    assert custom.grader_config.grader_description == "by a recipe"
    judge = official.graders.create.binary_judge(
        key="polite",
        criteria="The answer is polite.",
        judge_model=chat_model,
        feedback_key=f"p-{unique}",
        examples=[{"input": [{"role": "user", "content": "hi"}], "output": "hello", "passes": True}],
    )
    assert judge.grader_config.judge_criteria == "The answer is polite."
    assert judge.grader_config.examples[0].pass_ is True and judge.grader_config.model.key == chat_model
    prebuilt = official.graders.create.prebuilt_judge(key="faith", type="FAITHFULNESS", judge_model=chat_model)
    assert prebuilt.grader_config.prebuilt_criteria.feedback_key == "faithfulness"
    assert prebuilt.metric.key == "faithfulness"

    assert sorted(g.key for g in official.graders.list()) == ["faith", "mine", "polite", "words"]
    assert official.graders.get(grader_key="words").id == remote.id
    assert official.graders.lock(grader_key="words", locked=True).locked
    with pytest.raises(Exception, match="locked"):
        official.graders.delete(grader_key="words")
    official.graders.lock(grader_key="words", locked=False)
    assert official.graders.delete(grader_key="words") is True
    with pytest.raises(Exception, match="not found"):
        official.graders.get(grader_key="words")


def test_official_test_external_endpoint(official, word_server) -> None:  # noqa: F811
    online = official.graders.test_external_endpoint(word_server.url)
    assert type(online).__name__.endswith("Online") and online.name == "word-checker"
    from tests.support import free_port

    offline = official.graders.test_external_endpoint(f"http://127.0.0.1:{free_port()}")
    assert type(offline).__name__.endswith("Offline") and offline.error


def test_official_remote_envs(official, word_server, unique) -> None:  # noqa: F811
    from adaptive_sdk.graphql_client import RemoteEnvCreate

    gql = official._gql_client
    added = gql.add_remote_env(RemoteEnvCreate(url=word_server.url, key=f"env-{unique}")).add_remote_env
    assert (
        added.status.value == "ONLINE" and added.version == "1.2" and "expected" in added.metadata_schema["properties"]
    )
    assert f"env-{unique}" in [e.key for e in gql.list_remote_envs().remote_envs]
    assert gql.remove_remote_env(f"env-{unique}").remove_remote_env == str(added.id)
    assert f"env-{unique}" not in [e.key for e in gql.list_remote_envs().remote_envs]


def test_official_judges_api(official, chat_model, unique) -> None:  # noqa: F811
    from adaptive_sdk.graphql_client import (
        JudgeCreate,
        JudgeExampleInput,
        JudgeExampleInputTurnEntry,
        JudgeUpdate,
        PrebuiltCriteriaKey,
        PrebuiltJudgeCreate,
    )

    gql, uc = official._gql_client, f"offgr-{unique}"
    example = JudgeExampleInput(
        input=[JudgeExampleInputTurnEntry(role="user", content="hi")], output="hello", **{"pass": True}
    )
    v1 = gql.create_judge(
        uc,
        JudgeCreate(
            key="tone", name="Tone", criteria="Polite", model=chat_model, examples=[example], metric=f"tone-{unique}"
        ),
    ).create_judge
    assert v1.version == 1 and v1.criteria == "Polite" and v1.metric.key == f"tone-{unique}"
    assert (
        v1.examples[0].pass_
        and v1.model.key == chat_model
        and {c.value for c in v1.capabilities} == {"TRAINING", "EVALUATION"}
    )
    v2 = gql.update_judge(uc, "tone", JudgeUpdate(criteria="Very polite")).update_judge
    assert v2.version == 2 and v2.criteria == "Very polite" and v2.examples[0].output == "hello"
    assert gql.get_judge("tone", uc).judge.version == 2
    assert gql.get_judge("tone", uc, version=1).judge.criteria == "Polite"
    assert [j.version for j in gql.list_judge_versions(uc, "tone").judge_versions] == [2, 1]
    pre = gql.create_prebuilt_judge(
        uc,
        PrebuiltJudgeCreate(
            name="Faith", model=chat_model, key="faith", prebuiltCriteriaKey=PrebuiltCriteriaKey.FAITHFULNESS
        ),
    ).create_prebuilt_judge
    assert pre.prebuilt == "FAITHFULNESS" and pre.criteria is None and pre.metric.key == "faithfulness"
    assert sorted((j.key, j.version) for j in gql.list_judges(uc).judges) == [("faith", 1), ("tone", 2)]
    assert gql.delete_judge(uc, "tone").delete_judge.success
    assert [j.key for j in gql.list_judges(uc).judges] == ["faith"]
    with pytest.raises(Exception, match="not found"):
        gql.get_judge("tone", uc)
    with pytest.raises(Exception, match="criteria must not be empty"):
        gql.create_judge(uc, JudgeCreate(key="x", name="X", criteria=" ", model=chat_model))
    with pytest.raises(Exception, match="not in the model registry"):
        gql.create_judge(uc, JudgeCreate(key="x", name="X", criteria="c", model="nope"))
