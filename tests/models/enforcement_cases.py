"""Permission table rows of the lifecycle operations: use case updates, model updates and deletion, system
prompt templates, and the grader, dataset, recipe and artifact helpers."""

from __future__ import annotations

from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError
from tests.enforcement import Case


def _setup(w) -> None:
    a, s = w.admin, w.suffix
    for key in (f"life-upd-{s}", f"life-del-{s}"):
        a.models.add_external(
            name=key,
            key=key,
            external_model_id="gpt-x",
            api_key="sk-test",
            provider="open_ai",
            endpoint="http://127.0.0.1:9/v1",
        )
    w.extra["template"] = a.system_prompt_templates.create(name=f"life-{s}", template="Be kind.").id


def _use_case(a, w):
    u = a.use_cases.get(w.uc_a)
    return (u.name, u.description, u.is_archived)


def _models(a, w):
    return sorted((m.key, m.name, m.is_published) for m in a.models.list())


def _templates(a, w):
    return sorted((t.id, t.version) for t in a.system_prompt_templates.list())


CASES = [
    Case(
        ("Mutation.update_use_case",),
        on_use_case=lambda c, w, uc: c.use_cases.update(uc, description=w.fresh("d")),
        snapshot=_use_case,
        setup=_setup,
    ),
    Case(
        ("Mutation.update_model",),
        op=lambda c, w: c.models.update_model(f"life-upd-{w.suffix}", name=w.fresh("n"), published=True),
        snapshot=_models,
    ),
    # The first allowed call deletes the model; a later one finds it gone (or attached elsewhere): not a denial.
    Case(
        ("Mutation.delete_model",),
        op=lambda c, w: c.models.delete(f"life-del-{w.suffix}"),
        allowed_errors=(ConflictError, ValidationError, NotFoundError),
        snapshot=_models,
    ),
    Case(
        ("Query.system_prompt_templates",),
        op=lambda c, w: c.system_prompt_templates.list(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(
        ("Mutation.create_system_prompt_template",),
        op=lambda c, w: c.system_prompt_templates.create(name=w.fresh("t"), template="Hi."),
        snapshot=_templates,
    ),
    Case(
        ("Mutation.derive_system_prompt_template",),
        op=lambda c, w: c.system_prompt_templates.derive(w.extra["template"], template=w.fresh("v")),
        snapshot=_templates,
    ),
]

# Helpers. The objects they name do not exist: an allowed caller gets NOT_FOUND after the permission check.
_NO_ID = "0190b7d0-0000-7000-8000-000000000000"
CASES += [
    Case(
        ("Query.prebuilt_configs",),
        op=lambda c, w: c.graders.prebuilt_configs(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(
        ("Query.prebuilt_criteria",),
        op=lambda c, w: c.graders.prebuilt_criteria(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(
        ("Query.validate_data_schema_for_grader",),
        on_use_case=lambda c, w, uc: c.graders.validate_data_schema(grader_key="none", dataset="none", use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
        allowed_errors=(NotFoundError,),
    ),
    Case(
        ("Mutation.validate_dataset_schema",),
        on_use_case=lambda c, w, uc: c.graders.validate_dataset_schema(remote_env="none", dataset="none", use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
        allowed_errors=(NotFoundError,),
    ),
    Case(
        ("Query.parse_recipe_schema",), op=lambda c, w: c.recipes.parse_schema("   "), allowed_errors=(ValidationError,)
    ),
    Case(
        ("Query.artifacts",),
        on_use_case=lambda c, w, uc: c.artifacts.list(use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.artifact",),
        on_use_case=lambda c, w, uc: c.artifacts.get(_NO_ID, use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
        allowed_errors=(NotFoundError,),
    ),
]
