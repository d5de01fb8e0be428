"""Job executors behind one interface: local subprocesses and Ray."""

from adaptive_engine.server.jobs.executors.base import ExecState, Executor, LaunchSpec

__all__ = ["ExecState", "Executor", "LaunchSpec"]
