from __future__ import annotations

from datetime import datetime

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import ApiKey, CreatedApiKey

KEY_FIELDS = "id name prefix userEmail createdAt revokedAt expiresAt allowedModels useCases"


class ApiKeys(Resource[C]):
    """API keys: your own, or any user's with user:manage. Keys are shown once, at creation."""

    @operation
    def create(
        self,
        name: str = "",
        user: str | None = None,
        expires_at: int | str | datetime | None = None,
        allowed_models: list[str] | None = None,
        use_cases: list[str] | None = None,
    ) -> Returns[CreatedApiKey]:
        """Mint a key for ``user`` (email or id; default: you). ``.key`` is the only time you see it.
        Optional scope, enforced when the key calls models: ``expires_at`` (epoch seconds, ISO-8601 or a
        datetime), the model keys it may call, the use cases (keys or ids) it may call."""
        query = (
            "mutation CreateApiKey($input: ApiKeyCreate!) { createApiKey(input: $input) {"
            f" key apiKey {{ {KEY_FIELDS} }} }} }}"
        )
        if isinstance(expires_at, datetime):
            expires_at = expires_at.isoformat()
        data = yield GraphQL(
            query,
            {
                "input": {
                    "name": name,
                    "user": user,
                    "expiresAt": expires_at,
                    "allowedModels": allowed_models,
                    "useCases": use_cases,
                }
            },
        )
        return CreatedApiKey.model_validate(data["createApiKey"])

    @operation
    def list(self, user: str | None = None) -> Returns[list[ApiKey]]:
        """Keys of ``user`` (default: you), revoked ones included."""
        data = yield GraphQL(
            f"query ApiKeys($user: String) {{ apiKeys(user: $user) {{ {KEY_FIELDS} }} }}", {"user": user}
        )
        return [ApiKey.model_validate(k) for k in data["apiKeys"]]

    @operation
    def revoke(self, id: str) -> Returns[ApiKey]:
        """Revoke a key by id: it stops working at once."""
        query = f"mutation RevokeApiKey($id: UUID!) {{ revokeApiKey(id: $id) {{ {KEY_FIELDS} }} }}"
        data = yield GraphQL(query, {"id": str(id)})
        return ApiKey.model_validate(data["revokeApiKey"])
