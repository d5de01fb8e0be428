"""Typed objects returned by the SDK (shared across resources)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from adaptive_engine.sdk._base import APIObject


class Team(APIObject):
    id: str
    key: str
    name: str
    created_at: int


class Role(APIObject):
    id: str
    key: str
    name: str
    created_at: int
    permissions: list[str] = []


class TeamWithRole(APIObject):
    team: Team
    role: Role


class User(APIObject):
    id: str
    email: str
    name: str
    created_at: int
    teams: list[TeamWithRole] = []


class ComputeConfig(APIObject):
    tp: int
    kv_cache_len: int
    max_seq_len: int


class GatewayConfig(APIObject):
    """How the server's gateway calls a model (None: the server's default)."""

    connect_timeout_s: float | None = None
    first_byte_timeout_s: float | None = None
    total_timeout_s: float | None = None
    max_retries: int | None = None
    fallbacks: list[str] = []
    defaults: dict[str, Any] = {}


class UseCaseRef(APIObject):
    id: str
    key: str
    name: str


class ModelPrices(APIObject):
    """Dollars per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float = 0.0


class Model(APIObject):
    id: str
    key: str
    name: str
    online: str
    error: str | None = None
    is_external: bool = False
    provider_name: str | None = None
    provider: str | None = None
    is_adapter: bool = False
    is_training: bool = False
    created_at: int
    size: int | None = None
    compute_config: ComputeConfig | None = None
    gateway_config: GatewayConfig | None = None
    backbone: Model | None = None
    use_cases: list[UseCaseRef] = []
    is_published: bool = False
    is_stable: bool = False
    in_storage: bool | None = None
    prices: ModelPrices | None = None


class SystemPromptTemplate(APIObject):
    id: str
    name: str
    template: str
    arguments: list[str] = []
    created_at: int
    created_by: str | None = None
    family: str
    version: int


class ModelService(APIObject):
    id: str
    key: str
    name: str
    model: Model
    is_default: bool
    desired_online: bool
    created_at: int
    system_prompt_template: SystemPromptTemplate | None = None


class FeedbackKey(APIObject):
    id: str
    key: str
    name: str
    kind: str
    description: str = ""
    scoring_type: str
    created_at: Any = None


class UseCaseShare(APIObject):
    team: Team
    role: Role
    is_owner: bool


class UseCase(APIObject):
    id: str
    key: str
    name: str
    description: str
    created_at: int
    metrics: list[FeedbackKey] = []
    model_services: list[ModelService] = []
    permissions: list[str] = []
    shares: list[UseCaseShare] = []
    is_archived: bool = False
    gradient_color: str | None = None
    emoji: str | None = None
    default_metric: str | None = None  # the metric's key

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        # The wire nests the emoji and the default metric (metadata.emoji.native, settings.defaultMetric.key).
        if isinstance(data, dict):
            data = dict(data)
            emoji = (data.pop("metadata", None) or {}).get("emoji")
            data.setdefault("emoji", emoji["native"] if emoji else None)
            metric = (data.pop("settings", None) or {}).get("defaultMetric")
            data.setdefault("defaultMetric", metric["key"] if metric else None)
        return data


class Metric(APIObject):
    id: str
    key: str
    name: str
    kind: str
    description: str = ""
    scoring_type: str
    created_at: Any = None
    has_direct_feedbacks: bool = False
    has_comparison_feedbacks: bool = False


class DatasetMetricUsage(APIObject):
    feedback_count: int
    comparison_count: int
    metric: Metric


class DatasetProgress(APIObject):
    processed_lines: int
    total_lines: int
    progress: float


class DatasetPreview(APIObject):
    """What a dataset from filters would hold: its kind, how many rows, the first few."""

    kind: str
    count: int
    rows: list[dict[str, Any]]


class Dataset(APIObject):
    id: str
    key: str | None = None
    name: str
    created_at: int
    kind: str
    records: int | None = None
    source: str | None = None
    size_bytes: int | None = None
    metrics_usage: list[DatasetMetricUsage] = []
    # READY; a dataset from filters written in the background is PROCESSING, then READY or FAILED (see error).
    status: str = "READY"
    error: str | None = None
    progress: DatasetProgress | None = None
    download_url: str | None = None


# ----- feedback and interactions


class MetricUseCase(APIObject):
    id: str
    key: str
    name: str
    description: str = ""


class FeedbackKeyDetails(FeedbackKey):
    """A feedback key with whether feedback was logged on it, and the use cases it is linked to."""

    has_direct_feedbacks: bool = False
    has_comparison_feedbacks: bool = False
    use_cases: list[MetricUseCase] = []


class ChatMessage(APIObject):
    role: str
    content: str


class ModelRef(APIObject):
    id: str
    key: str
    name: str


class DirectFeedback(APIObject):
    id: str
    value: float
    metric: FeedbackKeyDetails | None = None
    reason: str | None = None
    details: str | None = None
    user_id: str | None = None
    created_at: int


class ComparedCompletion(APIObject):
    id: str
    completion: str | None = None
    source: str
    model: ModelRef | None = None


class ComparisonFeedback(APIObject):
    id: str
    created_at: int
    usecase: MetricUseCase | None = None
    metric: ModelRef | None = None
    prefered_completion: ComparedCompletion | None = None
    other_completion: ComparedCompletion | None = None
    tied: str | None = None


class Label(APIObject):
    key: str
    value: str


class UserRef(APIObject):
    id: str
    name: str
    email: str | None = None


class CustomRecipe(APIObject):
    id: str
    key: str | None = None
    name: str
    content: str = ""
    content_hash: str
    editable: bool = True
    global_: bool = Field(default=False, alias="global")
    builtin: bool = False
    input_schema: Any = None
    json_schema: Any = None
    description: str = ""
    labels: list[Label] = []
    created_at: int
    updated_at: int | None = None
    created_by: UserRef | None = None


class TokenUsage(APIObject):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


class InteractionMetadata(APIObject):
    parameters: Any = None
    timings: Any = None
    usage: TokenUsage | None = None
    system: Any = None


class Interaction(APIObject):
    """A logged completion with its prompt, model, labels and feedback."""

    id: str
    chat_messages: list[ChatMessage]
    completion: str | None = None
    source: str
    model: ModelRef | None = None
    direct_feedbacks: list[DirectFeedback] = []
    comparison_feedbacks: list[ComparisonFeedback] = []
    labels: list[Label] = []
    metadata: InteractionMetadata | None = None
    created_at: int
    session_id: str | None = None
    user_id: str | None = None
    prompt_hash: str | None = None
    ab_campaign_id: str | None = None
    # Set by interactions.update_completion(metadata=...).
    user_metadata: dict[str, Any] | None = None


class JobStage(APIObject):
    name: str
    status: str
    progress: float | None = None
    message: str | None = None


class JobArtifact(APIObject):
    id: str
    name: str
    kind: str
    status: str
    uri: str | None = None
    metadata: Any = None
    size_bytes: int | None = None
    created_at: int


class JobDetails(APIObject):
    args: Any = None
    recipe_hash: str
    artifacts: list[JobArtifact] = []


class JobMetricPoint(APIObject):
    step: int
    values: dict[str, float]
    created_at: int


class Job(APIObject):
    id: str
    name: str
    status: str
    kind: str
    created_at: int
    created_by: UserRef | None = None
    started_at: int | None = None
    ended_at: int | None = None
    duration_ms: int | None = None
    progress: float
    progress_message: str | None = None
    error: str | None = None
    num_gpus: int = 0
    stages: list[JobStage] = []
    use_case: UseCaseRef | None = None
    recipe: CustomRecipe | None = None
    details: JobDetails | None = None
    metrics: list[JobMetricPoint] = []


class PageInfo(APIObject):
    has_next_page: bool
    has_previous_page: bool = False
    start_cursor: str | None = None
    end_cursor: str | None = None


class InteractionPage(APIObject):
    total_count: int
    page_info: PageInfo
    nodes: list[Interaction]


class FeedbackStats(APIObject):
    metric: FeedbackKeyDetails
    feedbacks: int
    average: float | None = None
    max: float | None = None
    min: float | None = None
    stddev: float | None = None
    sum: float | None = None


class GroupCompletions(APIObject):
    nodes: list[Interaction]
    page_info: PageInfo | None = None


class InteractionGroup(APIObject):
    key: str | None = None
    count: int
    direct_feedbacks_stats: list[FeedbackStats] = []
    completions: GroupCompletions


class InteractionGroupPage(APIObject):
    total_count: int
    group_by: str
    page_info: PageInfo
    nodes: list[InteractionGroup]


class AddInteractionsResponse(APIObject):
    completion_id: str
    session_id: str
    feedback_ids: list[str] = []


class FeedbackOutput(APIObject):
    feedback_id: str


class ComparisonOutput(APIObject):
    comparison_id: str


class OutcomeOutput(APIObject):
    outcome_id: str


class JobPage(APIObject):
    total_count: int
    page_info: PageInfo
    nodes: list[Job]


class ComputePoolRef(APIObject):
    key: str
    name: str


class GpuAllocation(APIObject):
    name: str
    num_gpus: int
    ranks: list[int]
    created_at: int
    user_name: str | None = None
    job_id: str


class HarmonyGroup(APIObject):
    id: str
    key: str
    compute_pool: ComputePoolRef | None = None
    status: str
    url: str
    world_size: int
    gpu_types: str
    num_cpus: int | None = None
    job_slots: int | None = None
    inference_partition_size: int | None = None
    job_partition_size: int | None = None
    created_at: int
    online_models: list[Model] = []
    gpu_allocations: list[GpuAllocation] | None = None


class ComputePool(APIObject):
    id: str
    key: str
    name: str
    created_at: int
    capabilities: list[str]
    executor: str | None = None
    harmony_groups: list[HarmonyGroup] = []


class ResizeResult(APIObject):
    harmony_group_key: str
    success: bool
    # Why the server refused this group's new size (None when it succeeded).
    error: str | None = None


class JudgeExampleTurn(APIObject):
    role: str
    content: str


class JudgeExample(APIObject):
    input: list[JudgeExampleTurn]
    output: str
    passes: bool = Field(alias="pass")
    reasoning: str | None = None


class JudgeConfig(APIObject):
    typename: Literal["JudgeConfigOutput"] = Field(alias="__typename")
    criteria: str
    examples: list[JudgeExample] = []
    model: Model


class PrebuiltCriteria(APIObject):
    key: str
    name: str
    feedback_key: str
    description: str


class PrebuiltCriteriaInfo(APIObject):
    """A prebuilt criteria with the metric its scores go to (None until a grader registered it)."""

    key: str
    name: str
    description: str
    feedback: Metric | None = None


class DatasetValidation(APIObject):
    valid: bool
    message: str


class PrebuiltConfig(APIObject):
    typename: Literal["PrebuiltConfigOutput"] = Field(alias="__typename")
    criteria: PrebuiltCriteria
    model: Model


class RemoteConfig(APIObject):
    typename: Literal["RemoteConfigOutput"] = Field(alias="__typename")
    url: str
    version: str
    description: str
    name: str = ""


class CustomConfig(APIObject):
    typename: Literal["CustomConfigOutput"] = Field(alias="__typename")
    description: str | None = None
    has_code: bool = False


class Grader(APIObject):
    id: str
    name: str
    key: str
    locked: bool
    grader_type: str
    grader_config: JudgeConfig | PrebuiltConfig | RemoteConfig | CustomConfig = Field(discriminator="typename")
    use_case: UseCaseRef
    metric: Metric
    online_sample_rate: float = 0.0
    created_at: int
    updated_at: int


class EndpointOnline(APIObject):
    """test_external_endpoint: the reward server answered."""

    typename: Literal["RemoteEnvTestOnline"] = Field(alias="__typename")
    name: str
    version: str
    description: str


class EndpointOffline(APIObject):
    """test_external_endpoint: the reward server did not answer properly; ``error`` says why."""

    typename: Literal["RemoteEnvTestOffline"] = Field(alias="__typename")
    error: str


class GradeResult(APIObject):
    """A grader's verdict on one sample: ``score`` (None when not applicable or failed), the
    ``reasoning``, and ``error`` when grading this sample failed."""

    score: float | None = None
    reasoning: str | None = None
    error: str | None = None


# --------------------------------------------------------------------------- inference (REST, snake_case on the wire)


class ChatChoiceMessage(APIObject):
    id: str | None = None
    role: str
    content: str


class ChatChoice(APIObject):
    index: int
    message: ChatChoiceMessage
    finish_reason: str | None = None
    completion_id: str
    model: str


class ChatResponse(APIObject):
    id: str
    created: float
    model: str | None = None
    session_id: str
    choices: list[ChatChoice]
    usage: TokenUsage


class ChatDelta(APIObject):
    index: int
    delta: ChatChoiceMessage
    completion_id: str
    finish_reason: str | None = None


class ChatResponseChunk(APIObject):
    id: str
    created: float
    session_id: str
    choices: list[ChatDelta]
    usage: TokenUsage | None = None


class Embedding(APIObject):
    index: int
    embedding: list[float] | str


class EmbeddingsResponse(APIObject):
    data: list[Embedding]
    model: str | None = None
    usage: TokenUsage | None = None

    def vectors(self) -> list[list[float]]:
        """The vectors as floats, whatever the encoding format."""
        import base64
        import struct

        out = []
        for item in sorted(self.data, key=lambda d: d.index):
            if isinstance(item.embedding, str):
                raw = base64.b64decode(item.embedding)
                out.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
            else:
                out.append(list(item.embedding))
        return out


class TeamMember(APIObject):
    user: User
    team: Team
    role: Role


class ApiKey(APIObject):
    id: str
    name: str
    prefix: str
    user_email: str
    created_at: int
    revoked_at: int | None = None
    expires_at: int | None = None
    allowed_models: list[str] | None = None
    use_cases: list[str] | None = None


class CreatedApiKey(APIObject):
    key: str
    api_key: ApiKey


class Provider(APIObject):
    name: str
    description: str
    capabilities: list[str] = []
    allowed_scopes: list[str] = []


class IntegrationSubscription(APIObject):
    topic_pattern: str
    scope: str
    target_filter: Any = None


class IntegrationNotificationSettings(APIObject):
    subscriptions: list[IntegrationSubscription] = []


class IntegrationConfig(APIObject):
    provider: str
    # The provider's connection, secrets masked: SlackConfig, SmtpConfig, WebhookConfig or GitHubConfig fields.
    connection: dict[str, Any]
    notification_settings: IntegrationNotificationSettings | None = None
    delivery_policy: str


class Integration(APIObject):
    id: str
    team_id: str
    name: str
    capabilities: list[str] = []
    config: IntegrationConfig
    enabled: bool
    created_at: int
    # A webhook's signing secret made by the server: only in the answer of create (when no secret was
    # given) and rotate_secret; None on reads.
    signing_secret: str | None = None


class TestNotificationResult(APIObject):
    event_id: str
    message: str


class NotificationAttempt(APIObject):
    started_at: float
    duration_ms: int
    error: str | None = None
    retry_in_s: float | None = None


class NotificationDelivery(APIObject):
    id: str
    event_id: str
    topic: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: int | None = None
    last_error: str | None = None
    attempt_log: list[NotificationAttempt] = []
    message: Any = None
    created_at: int
    delivered_at: int | None = None


class NotificationDeliveryPage(APIObject):
    total_count: int
    page_info: PageInfo
    nodes: list[NotificationDelivery]


class UsageAggregate(APIObject):
    """One bucket of a model's usage (modelUsage)."""

    bucket_ts: int | None = None
    prompt_tokens: float = 0
    completion_tokens: float = 0
    total_tokens: float = 0
    interactions: float = 0


class UsageByUseCase(UsageAggregate):
    use_case: UseCaseRef
    model_service: ModelService | None = None


class UsageStats(UsageAggregate):
    cost: float = 0.0
    errors: float = 0


class UsageByModel(UsageStats):
    model: Model | None = None
    model_key: str
    timeseries: list[UsageAggregate] = []


class GlobalUsage(APIObject):
    total: UsageStats
    adaptive_models: UsageStats
    external_models: UsageStats
    by_model: list[UsageByModel] = []


class UsageReportRow(UsageStats):
    """Sums of one bucket and group of the usage roll-ups (latency in ms)."""

    model: str | None = None
    use_case_id: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None
    requests: float = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_mean_ms: float | None = None


class UsageLimit(APIObject):
    scope: str
    subject_id: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    budget_daily: float | None = None
    budget_monthly: float | None = None


class OwnUsageLimit(APIObject):
    limit: UsageLimit
    spent_today: float
    spent_this_month: float
