"""The GraphQL schema, assembled from per-domain Query and Mutation mixins.

A domain adds its mixin to QUERY_MIXINS / MUTATION_MIXINS (one line each).
"""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from adaptive_engine.server.config import Settings
from adaptive_engine.server.domains.ab_tests.graphql import AbTestMutation, AbTestQuery
from adaptive_engine.server.domains.compute_pools.graphql import ComputePoolMutation, ComputePoolQuery
from adaptive_engine.server.domains.datasets.graphql import DatasetMutation, DatasetQuery
from adaptive_engine.server.domains.feedback.graphql import FeedbackMutation, FeedbackQuery
from adaptive_engine.server.domains.graders.graphql import GraderMutation, GraderQuery
from adaptive_engine.server.domains.identity.graphql import IdentityMutation, IdentityQuery
from adaptive_engine.server.domains.integrations.graphql import IntegrationMutation, IntegrationQuery
from adaptive_engine.server.domains.interactions.graphql import InteractionMutation, InteractionQuery
from adaptive_engine.server.domains.jobs.graphql import JobMutation, JobQuery
from adaptive_engine.server.domains.models.graphql import ModelMutation, ModelQuery
from adaptive_engine.server.domains.recipes.graphql import RecipeMutation, RecipeQuery
from adaptive_engine.server.domains.usage.graphql import UsageMutation, UsageQuery
from adaptive_engine.server.domains.use_cases.graphql import UseCaseMutation, UseCaseQuery
from adaptive_engine.server.graphql.errors import ErrorsAndTransaction
from adaptive_engine.server.graphql.input_check import RefuseMalformedInput
from adaptive_engine.server.graphql.limits import limit_extensions
from adaptive_engine.server.graphql.observe import OperationMetrics
from adaptive_engine.server.graphql.scalars import SCALAR_MAP

QUERY_MIXINS: list[type] = [
    IntegrationQuery,
    IdentityQuery,
    UseCaseQuery,
    ModelQuery,
    DatasetQuery,
    FeedbackQuery,
    InteractionQuery,
    RecipeQuery,
    AbTestQuery,
    JobQuery,
    ComputePoolQuery,
    GraderQuery,
    UsageQuery,
]

MUTATION_MIXINS: list[type] = [
    IntegrationMutation,
    IdentityMutation,
    UseCaseMutation,
    ModelMutation,
    DatasetMutation,
    FeedbackMutation,
    InteractionMutation,
    RecipeMutation,
    AbTestMutation,
    JobMutation,
    ComputePoolMutation,
    GraderMutation,
    UsageMutation,
]


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # Domain and input errors are the caller's; internal ones are logged by ErrorsAndTransaction.
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; ``settings`` give its limits (graphql/limits.py), the defaults when not given."""
    query = strawberry.type(type("Query", tuple(QUERY_MIXINS), {}))
    mutation = strawberry.type(type("Mutation", tuple(MUTATION_MIXINS), {}))
    return Schema(
        query=query,
        mutation=mutation,
        extensions=[
            OperationMetrics,  # first: it times and counts refused operations too
            ErrorsAndTransaction,
            RefuseMalformedInput,
            *limit_extensions(settings or Settings()),
        ],
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
    )
