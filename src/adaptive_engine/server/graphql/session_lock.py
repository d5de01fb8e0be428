"""One lock per request context around the AsyncSession.

graphql-core resolves sibling fields concurrently, but an AsyncSession runs one statement at a time.
Resolvers that query the database from nested fields hold this lock while they do.
"""

from __future__ import annotations

import asyncio
from typing import Any


def session_lock(context: Any) -> asyncio.Lock:
    lock = getattr(context, "_session_lock", None)
    if lock is None:
        lock = asyncio.Lock()
        context._session_lock = lock
    return lock
