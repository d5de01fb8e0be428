from __future__ import annotations

import uuid
from typing import Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import Rest
from adaptive_engine.sdk.resources.chat import model_path
from adaptive_engine.sdk.types import EmbeddingsResponse


class Embeddings(Resource[C]):
    """Embeddings from a use case's embedding model (``POST /api/v1/embeddings``)."""

    @operation
    def create(
        self,
        input: str,
        model: str | None = None,
        encoding_format: Literal["Float", "Base64"] = "Float",
        use_case: str | None = None,
        user: str | uuid.UUID | None = None,
    ) -> Returns[EmbeddingsResponse]:
        """Embed ``input``. Vectors are lists of floats, or base64 strings of little-endian float32
        with ``encoding_format="Base64"`` (``EmbeddingsResponse.vectors()`` decodes both)."""
        if encoding_format not in ("Float", "Base64"):
            raise ValueError("encoding_format must be 'Float' or 'Base64'")
        body = {
            "input": input,
            "model": model_path(self.use_case_key(use_case), model),
            "encoding_format": encoding_format,
        }
        if user is not None:
            body["user"] = str(user)
        data = yield Rest("POST", "/embeddings", json=body)
        return EmbeddingsResponse.model_validate(data)
