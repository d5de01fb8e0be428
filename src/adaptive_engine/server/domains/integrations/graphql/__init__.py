"""GraphQL of integrations, one module per sub-resource: providers, a team's integrations, the delivery log
and test notifications. The schema takes the two roots below."""

from __future__ import annotations

import strawberry

from adaptive_engine.server.domains.integrations.graphql.deliveries import DeliveryQuery
from adaptive_engine.server.domains.integrations.graphql.integrations import IntegrationsMutation, IntegrationsQuery
from adaptive_engine.server.domains.integrations.graphql.providers import ProviderQuery
from adaptive_engine.server.domains.integrations.graphql.test_notifications import TestNotificationMutation


# The bases in the order the schema lists their fields.
@strawberry.type
class IntegrationQuery(ProviderQuery, IntegrationsQuery, DeliveryQuery):
    pass


@strawberry.type
class IntegrationMutation(IntegrationsMutation, TestNotificationMutation):
    pass
