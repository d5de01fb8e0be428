"""GraphQL of graders, judges and remote environments (names as the official client's documents use them),
one module per sub-resource; the schema takes the Query and Mutation mixins below."""

from __future__ import annotations

import strawberry

from adaptive_engine.server.domains.graders.graphql.graders import GradersMutation, GradersQuery
from adaptive_engine.server.domains.graders.graphql.judges import JudgeMutation, JudgeQuery
from adaptive_engine.server.domains.graders.graphql.remote_envs import RemoteEnvMutation, RemoteEnvQuery


# The fields take the order of the bases: graders, judges, remote environments, as the wire always had them.
@strawberry.type
class GraderQuery(GradersQuery, JudgeQuery, RemoteEnvQuery):
    pass


@strawberry.type
class GraderMutation(GradersMutation, RemoteEnvMutation, JudgeMutation):
    pass
