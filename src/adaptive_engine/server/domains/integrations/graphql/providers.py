"""GraphQL of notification providers: what kinds of integration a team can make."""

from __future__ import annotations

import enum

import strawberry

from adaptive_engine.server.auth.guard import authenticated
from adaptive_engine.server.domains.integrations import service
from adaptive_engine.server.notify import providers


@strawberry.enum(name="IntegrationCapability")
class IntegrationCapability(enum.Enum):
    NOTIFICATION_CHANNEL = "NOTIFICATION_CHANNEL"
    DATA_SOURCE = "DATA_SOURCE"
    CODE_SOURCE = "CODE_SOURCE"


@strawberry.enum(name="DeliveryScope")
class DeliveryScope(enum.Enum):
    USER = "USER"
    TEAM = "TEAM"
    ORGANIZATION = "ORGANIZATION"
    ADMIN = "ADMIN"


@strawberry.type(name="Provider")
class ProviderType:
    name: str
    description: str
    capabilities: list[IntegrationCapability]
    allowed_scopes: list[DeliveryScope]


def to_gql_provider(spec: providers.Provider) -> ProviderType:
    return ProviderType(
        name=spec.name,
        description=spec.description,
        capabilities=[IntegrationCapability(c) for c in spec.capabilities],
        allowed_scopes=[DeliveryScope(s) for s in spec.allowed_scopes],
    )


@strawberry.type
class ProviderQuery:
    @strawberry.field(extensions=[authenticated()])
    def providers(self) -> list[ProviderType]:
        return [to_gql_provider(p) for p in service.list_providers()]

    @strawberry.field(extensions=[authenticated()])
    def provider(self, name: str) -> ProviderType | None:
        return to_gql_provider(service.get_provider(name))
