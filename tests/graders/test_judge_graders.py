"""Judge and prebuilt judge graders: definition and validation (running them is in test_judges_run.py)."""

from __future__ import annotations

import pytest

from adaptive_engine.sdk.errors import NotFoundError, ValidationError

EXAMPLES = [
    {"input": [{"role": "user", "content": "Say hi"}], "output": "Hello!", "passes": True, "reasoning": "polite"},
    {"input": [{"role": "user", "content": "Say hi"}], "output": "Go away", "passes": False},
]


def test_binary_judge_definition(client, use_case, chat_model, unique) -> None:
    grader = client.graders.create.binary_judge(
        key="polite",
        criteria="The answer is polite.",
        judge_model=chat_model,
        feedback_key=f"polite-{unique}",
        examples=EXAMPLES,
        name="Politeness",
    )
    assert grader.name == "Politeness" and grader.grader_type == "JUDGE"
    cfg = grader.grader_config
    assert cfg.criteria == "The answer is polite." and cfg.model.key == chat_model
    assert [e.passes for e in cfg.examples] == [True, False] and cfg.examples[0].reasoning == "polite"
    assert grader.metric.key == f"polite-{unique}" and grader.metric.kind == "BOOL"


def test_prebuilt_judges(client, use_case, chat_model) -> None:
    for kind, feedback in [
        ("FAITHFULNESS", "faithfulness"),
        ("ANSWER_RELEVANCY", "answer_relevancy"),
        ("CONTEXT_RELEVANCY", "context_relevancy"),
    ]:
        grader = client.graders.create.prebuilt_judge(key=kind.lower(), type=kind, judge_model=chat_model)
        assert grader.grader_config.criteria.key == kind
        assert grader.metric.key == feedback == grader.grader_config.criteria.feedback_key


def test_judge_bad_inputs(client, use_case, chat_model, unique) -> None:
    with pytest.raises(NotFoundError, match="not in the model registry"):
        client.graders.create.binary_judge(key="j", criteria="c", judge_model="no-such-model", feedback_key="f")
    with pytest.raises(ValidationError, match="criteria must not be empty"):
        client.graders.create.binary_judge(key="j", criteria="  ", judge_model=chat_model, feedback_key="f")
    with pytest.raises(ValueError, match="passes"):
        client.graders.create.binary_judge(
            key="j", criteria="c", judge_model=chat_model, feedback_key="f", examples=[{"input": [], "output": "x"}]
        )
    bad_examples = [
        [{"input": [], "output": "x", "passes": True}],
        [{"input": [{"role": "wizard", "content": "x"}], "output": "x", "passes": True}],
    ]
    for examples in bad_examples:
        with pytest.raises(ValidationError, match="example 0"):
            client.graders.create.binary_judge(
                key="j", criteria="c", judge_model=chat_model, feedback_key="f", examples=examples
            )
    with pytest.raises(ValidationError):
        client.graders.create.prebuilt_judge(key="p", type="HELPFULNESS", judge_model=chat_model)
    with pytest.raises(NotFoundError):
        client.graders.create.prebuilt_judge(key="p", type="FAITHFULNESS", judge_model="missing")
    assert client.graders.list() == []
    assert f"f-{unique}" not in [m.key for m in client.use_cases.get().metrics]


def test_bad_template_is_refused(client, use_case, chat_model) -> None:
    query = (
        """mutation($uc: IdOrKey!, $input: GraderCreateInput!) { createGrader(useCase: $uc, input: $input) { id } }"""
    )
    from adaptive_engine.sdk._requests import GraphQL

    def call(template: str):
        def op(self):
            return (
                yield GraphQL(
                    query,
                    {
                        "uc": use_case,
                        "input": {
                            "name": "t",
                            "key": "t",
                            "graderType": "JUDGE",
                            "graderConfig": {
                                "judge": {
                                    "model": chat_model,
                                    "criteria": "c",
                                    "examples": [],
                                    "systemTemplate": template,
                                    "userTemplate": "{{{completion}}}",
                                }
                            },
                        },
                    },
                )
            )

        return client._transport.run(op(None))

    with pytest.raises(ValidationError, match="Handlebars"):
        call("{{#if examples.length}} unclosed")
    assert call("Judge {{{criteria}}}")["createGrader"]["id"]
