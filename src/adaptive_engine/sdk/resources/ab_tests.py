from __future__ import annotations

from typing import Literal

from adaptive_engine.sdk._base import APIObject, C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL

FEEDBACK_TYPES = {"metric": "DIRECT", "preference": "COMPARISON"}
STATUSES = ("warmup", "in_progress", "done", "cancelled")

_REF = "id key name"
CAMPAIGN_FIELDS = f"""
  id key name status beginDate endDate feedbackType trafficSplit autoDeploy feedbacks hasEnoughFeedbacks
  metric {{ id key name kind scoringType }}
  useCase {{ {_REF} }}
  models {{ {_REF} }}
  winner {{ {_REF} }}
"""
REPORT_FIELDS = f"""
  pValue decision warmingUp sampleRatioMismatch sampleRatioPValue notes
  winner {{ {_REF} }}
  variants {{
    variant {{ {_REF} }} feedbacks mean assignments
    interval {{ start middle end }}
    comparisons {{ feedbacks wins losses tiesGood tiesBad variant {{ {_REF} }} }}
  }}
  pairs {{ variantA {{ {_REF} }} variantB {{ {_REF} }} estimate intervalStart intervalEnd pValue }}
"""


class Ref(APIObject):
    id: str
    key: str
    name: str


class AbMetric(APIObject):
    id: str
    key: str
    name: str
    kind: str
    scoring_type: str


class Interval(APIObject):
    start: float
    middle: float
    end: float


class Comparison(APIObject):
    feedbacks: int
    wins: int
    losses: int
    ties_good: int
    ties_bad: int
    variant: Ref


class VariantReport(APIObject):
    variant: Ref
    feedbacks: int
    mean: float | None = None
    assignments: int = 0
    interval: Interval | None = None
    comparisons: list[Comparison] | None = None


class PairTest(APIObject):
    variant_a: Ref
    variant_b: Ref
    estimate: float | None = None
    interval_start: float | None = None
    interval_end: float | None = None
    p_value: float


class AbReport(APIObject):
    p_value: float | None = None
    decision: str
    winner: Ref | None = None
    warming_up: bool
    sample_ratio_mismatch: bool
    sample_ratio_p_value: float | None = None
    notes: list[str] = []
    variants: list[VariantReport] = []
    pairs: list[PairTest] = []


class AbCampaign(APIObject):
    id: str
    key: str
    name: str
    status: str
    begin_date: int
    end_date: int | None = None
    feedback_type: str
    traffic_split: float
    auto_deploy: bool
    feedbacks: int
    has_enough_feedbacks: bool
    metric: AbMetric | None = None
    use_case: Ref | None = None
    models: list[Ref] = []
    winner: Ref | None = None
    report: AbReport | None = None


class ABTests(Resource[C]):
    """A/B tests: split a use case's traffic between models, decide with always-valid statistics,
    and optionally promote the winner to the use case's default model."""

    @operation
    def create(
        self,
        ab_test_key: str,
        feedback_key: str,
        models: list[str],
        traffic_split: float = 1.0,
        feedback_type: Literal["metric", "preference"] = "metric",
        auto_deploy: bool = False,
        use_case: str | None = None,
    ) -> Returns[AbCampaign]:
        """Start an A/B test between ``models`` (attached to the use case) on ``feedback_key``.

        ``traffic_split``: share of the use case's default traffic sent to the test, in (0, 1].
        ``feedback_type``: ``metric`` (feedback values) or ``preference`` (pairwise preferences).
        ``auto_deploy``: make the winner the use case's default model when the test decides."""
        if feedback_type not in FEEDBACK_TYPES:
            raise ValueError(f"feedback_type must be 'metric' or 'preference', not {feedback_type!r}")
        query = (
            "mutation CreateAbCampaign($input: AbcampaignCreate!) { createAbCampaign(input: $input) {"
            f" {CAMPAIGN_FIELDS} }} }}"
        )
        variables = {
            "input": {
                "key": ab_test_key,
                "metric": feedback_key,
                "useCase": self.use_case_key(use_case),
                "modelServices": list(models),
                "trafficSplit": traffic_split,
                "autoDeploy": auto_deploy,
                "feedbackType": FEEDBACK_TYPES[feedback_type],
            }
        }
        data = yield GraphQL(query, variables)
        return AbCampaign.model_validate(data["createAbCampaign"])

    @operation
    def get(self, key: str) -> Returns[AbCampaign]:
        """The A/B test with its live report: per model the count, mean (or win rate) and anytime-valid
        interval; the always-valid p-value, the decision and the winner."""
        query = (
            "query DescribeAbCampaign($key: IdOrKey!) { abCampaign(idOrKey: $key) { "
            f"{CAMPAIGN_FIELDS} report {{ {REPORT_FIELDS} }} }} }}"
        )
        data = yield GraphQL(query, {"key": key})
        return AbCampaign.model_validate(data["abCampaign"])

    @operation
    def list(
        self,
        active: bool | None = None,
        status: Literal["warmup", "in_progress", "done", "cancelled"] | None = None,
        use_case: str | None = None,
    ) -> Returns[list[AbCampaign]]:
        """A/B tests of the use case (the client's default when not given), newest first."""
        if status is not None and status.lower() not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        query = (
            "query ListAbCampaigns($filter: AbCampaignFilter!) { abCampaigns(filter: $filter) {"
            f" {CAMPAIGN_FIELDS} }} }}"
        )
        variables = {
            "filter": {
                "active": active,
                "status": status.upper() if status else None,
                "useCase": self.use_case_key(use_case),
            }
        }
        data = yield GraphQL(query, variables)
        return [AbCampaign.model_validate(c) for c in data["abCampaigns"]]

    @operation
    def cancel(self, key: str) -> Returns[str]:
        """Cancel an active A/B test; returns its key."""
        data = yield GraphQL(
            "mutation CancelAbCampaign($key: IdOrKey!) { cancelAbCampaign(input: $key) }", {"key": key}
        )
        return str(data["cancelAbCampaign"])
