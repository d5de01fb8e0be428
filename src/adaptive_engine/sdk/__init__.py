from adaptive_engine.sdk.client import Adaptive, AsyncAdaptive

__all__ = ["Adaptive", "AsyncAdaptive"]
