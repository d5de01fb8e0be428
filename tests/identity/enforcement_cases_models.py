"""Permission table rows of the model registry, model services and judges (swept by identity; the
models and graders domains may move them to their folders)."""

from __future__ import annotations

from adaptive_engine.sdk.errors import ConflictError, ServerError, ValidationError
from tests.enforcement import Case, gql, rest

ANY_BUT_DENIED = (ConflictError, ValidationError, ServerError)


def _external(c, key: str):
    return c.models.add_external(
        name=key, external_model_id="gpt-x", api_key="sk-test", provider="open_ai", endpoint="http://127.0.0.1:9/v1"
    )


def _setup(w) -> None:
    a, s = w.admin, w.suffix
    for key in (f"reg-{s}", f"loose-{s}", f"attached-{s}", f"victim-{s}", f"deploy-{s}"):
        _external(a, key)
    a.models.add_to_use_case(f"attached-{s}", use_case=w.uc_a)
    a.models.add_to_use_case(f"victim-{s}", use_case=w.uc_a)
    gql(
        a,
        "mutation M($input: MetricCreate!) { createMetric(input: $input) { key } }",
        {"input": {"key": f"jm-{s}", "name": "jm", "kind": "SCALAR"}},
    )
    _judge(a, w, w.uc_a, f"judge-{s}")
    _judge(a, w, w.uc_a, f"judge-victim-{s}")


def _judge(c, w, uc: str, key: str):
    query = "mutation J($u: IdOrKey!, $i: JudgeCreate!) { createJudge(useCase: $u, input: $i) { key } }"
    return gql(
        c,
        query,
        {"u": uc, "i": {"key": key, "name": key, "criteria": "Is it polite?", "model": f"attached-{w.suffix}"}},
    )


def _services(a, w):
    return sorted((s.model.key, s.is_default, s.desired_online) for s in a.use_cases.get(w.uc_a).model_services)


def _models(a, w):
    return sorted(m.key for m in a.models.list())


def _conversions(a):
    return sorted(j.id for j in a.jobs.list(kind=["MODEL_CONVERSION"]).nodes)


def _judges(a, w):
    data = gql(a, "query J($u: IdOrKey!) { judges(useCase: $u) { key name } }", {"u": w.uc_a})
    return sorted((j["key"], j["name"]) for j in data["judges"])


CASES = [
    Case(
        ("Query.models",),
        op=lambda c, w: c.models.list(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.model",),
        op=lambda c, w: c.models.get(f"reg-{w.suffix}"),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(("Mutation.add_external_model",), op=lambda c, w: _external(c, w.fresh("ext")), snapshot=_models),
    Case(
        ("Mutation.add_model",),
        op=lambda c, w: c.models.add_local(path="/nonexistent/model", name=w.fresh("local")),
        allowed_errors=(ValidationError,),
        snapshot=_models,
    ),
    # A folder that does not exist: the allowed user gets INVALID_INPUT before any job is queued.
    Case(
        ("Mutation.import_hf_model",),
        op=lambda c, w: c.models.add_hf_model("/nonexistent/model", w.fresh("hf"), w.fresh("hf"), hf_token=""),
        allowed_errors=(ValidationError,),
        snapshot=lambda a, w: (_models(a, w), _conversions(a)),
    ),
    Case(
        ("Mutation.update_model_compute_config",),
        op=lambda c, w: c.models.update_compute_config(f"reg-{w.suffix}", {"tp": 1}),
        allowed_errors=ANY_BUT_DENIED,
    ),
    Case(
        ("Mutation.terminate_model",),
        op=lambda c, w: c.models.terminate(f"reg-{w.suffix}"),
        allowed_errors=ANY_BUT_DENIED,
        snapshot=_services,
    ),
    Case(
        ("Mutation.add_model_to_use_case",),
        on_use_case=lambda c, w, uc: c.models.add_to_use_case(f"loose-{w.suffix}", use_case=uc),
        snapshot=_services,
    ),
    Case(
        ("Mutation.deploy_model",),
        on_use_case=lambda c, w, uc: c.models.deploy(f"deploy-{w.suffix}", use_case=uc),
        allowed_errors=ANY_BUT_DENIED,
        snapshot=_services,
    ),
    Case(
        ("Mutation.update_model_service",),
        on_use_case=lambda c, w, uc: c.models.update(f"attached-{w.suffix}", desired_online=False, use_case=uc),
        snapshot=_services,
    ),
    Case(
        ("Mutation.remove_model_from_use_case",),
        on_use_case=lambda c, w, uc: c.models.detach(f"victim-{w.suffix}", use_case=uc),
        snapshot=_services,
    ),
    # Judges.
    Case(
        ("Query.judge",),
        on_use_case=lambda c, w, uc: gql(
            c,
            "query J($u: IdOrKey!, $k: IdOrKey!) { judge(useCase: $u, id: $k) { key } }",
            {"u": uc, "k": f"judge-{w.suffix}"},
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.judges",),
        on_use_case=lambda c, w, uc: gql(c, "query J($u: IdOrKey!) { judges(useCase: $u) { key } }", {"u": uc}),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.judge_versions",),
        on_use_case=lambda c, w, uc: gql(
            c,
            "query J($u: IdOrKey!, $k: String!) { judgeVersions(useCase: $u, key: $k) { key } }",
            {"u": uc, "k": f"judge-{w.suffix}"},
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(("Mutation.create_judge",), on_use_case=lambda c, w, uc: _judge(c, w, uc, w.fresh("judge")), snapshot=_judges),
    Case(
        ("Mutation.create_prebuilt_judge",),
        on_use_case=lambda c, w, uc: gql(
            c,
            (
                "mutation P($u: IdOrKey!, $i: PrebuiltJudgeCreate!) { createPrebuiltJudge(useCase: $u,"
                " input: $i) { key } }"
            ),
            {
                "u": uc,
                "i": {
                    "key": w.fresh("pj"),
                    "name": "p",
                    "model": f"attached-{w.suffix}",
                    "prebuiltCriteriaKey": "FAITHFULNESS",
                },
            },
        ),
        snapshot=_judges,
    ),
    Case(
        ("Mutation.update_judge",),
        on_use_case=lambda c, w, uc: gql(
            c,
            (
                "mutation U($u: IdOrKey!, $k: String!, $i: JudgeUpdate!) { updateJudge(useCase: $u, key:"
                " $k, input: $i) { key } }"
            ),
            {"u": uc, "k": f"judge-{w.suffix}", "i": {"name": w.fresh("n")}},
        ),
        snapshot=_judges,
    ),
    Case(
        ("Mutation.delete_judge",),
        on_use_case=lambda c, w, uc: gql(
            c,
            "mutation D($u: IdOrKey!, $k: String!) { deleteJudge(useCase: $u, key: $k) { __typename } }",
            {"u": uc, "k": f"judge-victim-{w.suffix}"},
        ),
        snapshot=_judges,
    ),
]


def _infer(path: str, body: dict):
    def run(c, w, uc):
        return rest(c, "POST", path, json={"model": f"{uc}/attached-{w.suffix}", **body})

    return run


# Inference: the attached model's endpoint is unreachable, so an allowed call ends in an upstream error.
INFERENCE_PASSED = (ServerError, ValidationError, ConflictError)
CASES += [
    Case(
        ("POST /api/v1/chat/completions",),
        on_use_case=_infer("/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=INFERENCE_PASSED,
    ),
    Case(
        ("POST /api/v1/completions",),
        on_use_case=_infer("/completions", {"prompt": "hi"}),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=INFERENCE_PASSED,
    ),
    Case(
        ("POST /api/v1/embeddings",),
        on_use_case=_infer("/embeddings", {"input": "hi"}),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=INFERENCE_PASSED,
    ),
]
