"""Adaptive Engine: serve models, log traffic, learn from feedback."""

from adaptive_engine.sdk import Adaptive, AsyncAdaptive

__all__ = ["Adaptive", "AsyncAdaptive"]
