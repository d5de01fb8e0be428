from __future__ import annotations

from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.resources.models import MODEL_FIELDS, SERVICE_FIELDS
from adaptive_engine.sdk.types import (
    GlobalUsage,
    OwnUsageLimit,
    UsageAggregate,
    UsageByUseCase,
    UsageLimit,
    UsageReportRow,
)

AGGREGATE = "bucketTs promptTokens completionTokens totalTokens interactions"
STATS = f"{AGGREGATE} cost errors"
LIMIT_FIELDS = "scope subjectId requestsPerMinute tokensPerMinute maxConcurrent budgetDaily budgetMonthly"
REPORT_FIELDS = f"{STATS} model useCaseId apiKeyId userId requests latencyP50Ms latencyP95Ms latencyMeanMs"


def _timerange(since: Any, until: Any) -> dict[str, Any] | None:
    """Epoch seconds or milliseconds, ISO-8601 or datetimes; both or neither."""
    if since is None and until is None:
        return None
    if since is None or until is None:
        raise ValueError("give both since and until, or neither (all time)")
    return {"from": getattr(since, "isoformat", lambda: since)(), "to": getattr(until, "isoformat", lambda: until)()}


class Usage(Resource[C]):
    """Usage from the server's roll-ups (requests, tokens, errors, latency, cost), and limits on API keys,
    users and use cases. Units: MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR, NO_GROUP_BY_DATE."""

    @operation
    def model_usage(
        self, model: str, unit: str = "DAY", since: Any = None, until: Any = None
    ) -> Returns[list[UsageAggregate]]:
        """A model's usage per bucket of ``unit``."""
        query = f"query ModelUsage($f: UsageFilterInput!) {{ modelUsage(filter: $f) {{ {AGGREGATE} }} }}"
        data = yield GraphQL(query, {"f": {"modelId": model, "unit": unit, "timerange": _timerange(since, until)}})
        return [UsageAggregate.model_validate(r) for r in data["modelUsage"]]

    @operation
    def model_usage_by_use_case(
        self, model: str, since: Any = None, until: Any = None
    ) -> Returns[list[UsageByUseCase]]:
        """A model's usage per use case."""
        query = (
            f"query ModelUsageByUseCase($f: UsagePerUseCaseFilterInput!) {{ modelUsageByUseCase(filter: $f) {{"
            f" {AGGREGATE} useCase {{ id key name }} modelService {{ {SERVICE_FIELDS} }} }} }}"
        )
        data = yield GraphQL(query, {"f": {"modelId": model, "timerange": _timerange(since, until)}})
        return [UsageByUseCase.model_validate(r) for r in data["modelUsageByUseCase"]]

    @operation
    def global_usage(self, interval: str = "DAY", since: Any = None, until: Any = None) -> Returns[GlobalUsage]:
        """Usage of every model you can see: totals, local and external models apart, and per model."""
        query = (
            f"query GlobalUsage($f: GlobalUsageFilterInput!) {{ globalUsage(filter: $f) {{"
            f" total {{ {STATS} }} adaptiveModels {{ {STATS} }} externalModels {{ {STATS} }}"
            f" byModel {{ {STATS} modelKey model {{ {MODEL_FIELDS} }} timeseries {{ {AGGREGATE} }} }} }} }}"
        )
        data = yield GraphQL(query, {"f": {"interval": interval, "timerange": _timerange(since, until)}})
        return GlobalUsage.model_validate(data["globalUsage"])

    @operation
    def report(
        self,
        unit: str = "NO_GROUP_BY_DATE",
        group_by: list[str] | None = None,
        since: Any = None,
        until: Any = None,
        models: list[str] | None = None,
        use_cases: list[str] | None = None,
        api_keys: list[str] | None = None,
        users: list[str] | None = None,
        mine: bool = False,
    ) -> Returns[list[UsageReportRow]]:
        """Sums per bucket and per group (``group_by`` of MODEL, USE_CASE, API_KEY, USER): requests, tokens,
        errors, cost and latency p50/p95. ``mine``: only your own usage (anyone may ask)."""
        query = f"query UsageReport($i: UsageReportInput!) {{ usageReport(input: $i) {{ {REPORT_FIELDS} }} }}"
        data = yield GraphQL(
            query,
            {
                "i": {
                    "unit": unit,
                    "groupBy": group_by or [],
                    "timerange": _timerange(since, until),
                    "models": models,
                    "useCases": use_cases,
                    "apiKeys": api_keys,
                    "users": users,
                    "mine": mine,
                }
            },
        )
        return [UsageReportRow.model_validate(r) for r in data["usageReport"]]

    @operation
    def set_limits(
        self,
        scope: str,
        subject: str,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_concurrent: int | None = None,
        budget_daily: float | None = None,
        budget_monthly: float | None = None,
    ) -> Returns[UsageLimit]:
        """Set (replace) the limits of an API key (id or prefix), user (id or email) or use case (id or key);
        ``scope`` is API_KEY, USER or USE_CASE; None is no limit of that kind. Budgets are in dollars per UTC
        day / calendar month. Needs user:manage."""
        query = f"mutation SetUsageLimits($i: UsageLimitInput!) {{ setUsageLimits(input: $i) {{ {LIMIT_FIELDS} }} }}"
        data = yield GraphQL(
            query,
            {
                "i": {
                    "scope": scope,
                    "subject": subject,
                    "requestsPerMinute": requests_per_minute,
                    "tokensPerMinute": tokens_per_minute,
                    "maxConcurrent": max_concurrent,
                    "budgetDaily": budget_daily,
                    "budgetMonthly": budget_monthly,
                }
            },
        )
        return UsageLimit.model_validate(data["setUsageLimits"])

    @operation
    def remove_limits(self, scope: str, subject: str) -> Returns[bool]:
        """Remove every limit of a subject; False if it had none."""
        query = (
            "mutation RemoveUsageLimits($s: UsageLimitScope!, $x: String!) "
            "{ removeUsageLimits(scope: $s, subject: $x) }"
        )
        data = yield GraphQL(query, {"s": scope, "x": subject})
        return bool(data["removeUsageLimits"])

    @operation
    def list_limits(self, scope: str | None = None) -> Returns[list[UsageLimit]]:
        """Every limit set (of one scope). Needs user:manage."""
        query = f"query UsageLimits($s: UsageLimitScope) {{ usageLimits(scope: $s) {{ {LIMIT_FIELDS} }} }}"
        data = yield GraphQL(query, {"s": scope})
        return [UsageLimit.model_validate(r) for r in data["usageLimits"]]

    @operation
    def my_limits(self) -> Returns[list[OwnUsageLimit]]:
        """The limits on your API key and your user, with what you spent today and this month."""
        query = f"query MyLimits {{ myLimits {{ limit {{ {LIMIT_FIELDS} }} spentToday spentThisMonth }} }}"
        data = yield GraphQL(query, {})
        return [OwnUsageLimit.model_validate(r) for r in data["myLimits"]]
