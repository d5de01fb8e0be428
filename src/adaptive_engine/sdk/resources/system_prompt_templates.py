from __future__ import annotations

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.resources.models import TEMPLATE_FIELDS
from adaptive_engine.sdk.types import SystemPromptTemplate


class SystemPromptTemplates(Resource[C]):
    """Versioned system prompts a model service adds to chat requests that bring no system message.
    ``{{name}}`` placeholders are filled from the request's labels (or OpenAI metadata)."""

    @operation
    def list(self, family: str | None = None) -> Returns[list[SystemPromptTemplate]]:
        """Every version of every template, or the versions of one template (``family``: any version's id)."""
        query = f"query Templates($f: JSON) {{ systemPromptTemplates(family: $f) {{ {TEMPLATE_FIELDS} }} }}"
        data = yield GraphQL(query, {"f": family})
        return [SystemPromptTemplate.model_validate(t) for t in data["systemPromptTemplates"]]

    @operation
    def create(self, name: str, template: str) -> Returns[SystemPromptTemplate]:
        """A new template (version 1 of its family)."""
        query = (
            f"mutation CreateTemplate($input: SystemPromptTemplateCreate!) "
            f"{{ createSystemPromptTemplate(input: $input) {{ {TEMPLATE_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"input": {"name": name, "template": template}})
        return SystemPromptTemplate.model_validate(data["createSystemPromptTemplate"])

    @operation
    def derive(
        self, system_prompt_template: str, template: str, name: str | None = None, update_model_services: bool = False
    ) -> Returns[SystemPromptTemplate]:
        """The next version of a template; ``update_model_services`` moves the model services that use any
        version of it to the new one."""
        query = (
            f"mutation DeriveTemplate($input: SystemPromptTemplateUpdate!) "
            f"{{ deriveSystemPromptTemplate(input: $input) {{ {TEMPLATE_FIELDS} }} }}"
        )
        wire = {
            "systemPromptTemplate": system_prompt_template,
            "template": template,
            "name": name,
            "updateModelServices": update_model_services,
        }
        data = yield GraphQL(query, {"input": wire})
        return SystemPromptTemplate.model_validate(data["deriveSystemPromptTemplate"])
