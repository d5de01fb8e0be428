"""API keys: random, shown once, stored as a SHA-256 digest (the keys are high-entropy, so a slow hash adds nothing)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "ae_"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]
