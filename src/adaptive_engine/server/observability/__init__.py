"""Metrics, traces and logs of the server (docs/observability.md)."""
