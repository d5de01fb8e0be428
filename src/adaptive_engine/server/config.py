"""Server settings. Built explicitly (``Settings(...)``) or from ``ADAPTIVE_*`` env vars; never a global."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # validate_by_name: fields with an alias (kept for an old env name) are still set by name in code.
    model_config = SettingsConfigDict(env_prefix="ADAPTIVE_", extra="ignore", validate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; SQLite in data_dir by default")
    admin_api_key: str | None = Field(default=None, description="Bootstrap admin API key (env ADAPTIVE_ADMIN_API_KEY)")
    # Register and load the bundled local models on start. Tests that do not need them turn this off.
    bundled_models: bool = True
    # Converted local weights (the bundled GGUF as safetensors) live here (default: DATA_DIR/models).
    model_cache_dir: Path | None = None
    # Rows (sampled choices) a local chat model decodes together. On a CPU a step over 64 rows costs
    # about twice one over 16, so larger batches serve n>1 sampling and concurrent traffic faster.
    local_max_batch_rows: int = Field(default=64, ge=1)
    # Seconds an external provider has to answer one request (its head, then each wait for more of a stream).
    external_timeout_s: float = 60.0
    # Seconds to connect to an external provider; more attempts after a connection error, 429 or 5xx
    # (models may set their own: updateModelGatewayConfig).
    external_connect_timeout_s: float = Field(default=10.0, gt=0)
    external_max_retries: int = Field(default=2, ge=0, le=10)
    # What serves local models: "local" (transformers in this process) or "vllm" (one `vllm serve` process
    # per deployed model, on a GPU machine; needs the vllm extra).
    inference_backend: Literal["local", "vllm"] = "local"
    # Which engine serves local chat models with inference_backend "local": "llamacpp" runs GGUF models (and
    # LoRA adapters trained on them) quantized through llama.cpp, and what it cannot serve through transformers
    # (logged with the reason), as it does every model when llama-cpp-python is not installed; "transformers"
    # serves every local model through transformers.
    local_engine: Literal["llamacpp", "transformers"] = "llamacpp"
    # The vLLM command (split like a shell line), extra `vllm serve` arguments (e.g. "--gpu-memory-utilization
    # 0.45"), and how long a starting server has to answer /health.
    vllm_command: str = "vllm"
    vllm_args: str = ""
    vllm_startup_timeout_s: float = 600.0
    # FastAPI's OpenTelemetry spans, metrics and logs for every request, to the providers the process
    # configured (OTEL_* variables or your own set-up). Off by default: even unused, its per-request check
    # cost a few percent of a logging request. Prometheus metrics are always at /metrics.
    # With it, each LLM call (chat, completion, embedding) gets a span with the GenAI semantic conventions'
    # attributes, a child of its HTTP span (docs/observability.md). Prompts and answers go on those spans
    # only with opentelemetry_capture_content (they are often personal data).
    opentelemetry: bool = False
    opentelemetry_capture_content: bool = False
    # Largest request body accepted on REST and GraphQL (uploads included), in bytes.
    max_request_bytes: int = 64 * 1024 * 1024
    # Connections (see server/connections.py): seconds an idle connection stays open after a response;
    # seconds a client has to send a request's line and headers, from connecting or from its previous
    # response; seconds a request body may stop arriving before 408 (0: no limit); connections and requests
    # at once beyond which new requests get 503 (unset: no limit).
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    request_head_timeout_s: float = Field(default=10.0, gt=0)
    request_body_timeout_s: float = Field(default=30.0, ge=0)
    max_connections: int | None = Field(default=None, ge=1)
    # `Authorization: Bearer <this>` reads /metrics, and nothing else (admin keys always can).
    metrics_token: SecretStr | None = None
    # Request JSON (REST bodies, GraphQL bodies and variables) nested deeper, or with an array or object of
    # more items, is refused (400). 200 is the JSON parser's own ceiling.
    max_json_depth: int = Field(default=64, ge=2, le=200)
    max_json_items: int = Field(default=10_000, ge=1)
    log_level: str = "info"
    # Server logs as plain text (for a terminal) or one JSON object per line with the request's id, the access
    # log included (for a log collector); see docs/observability.md.
    log_format: Literal["text", "json"] = "text"
    # GraphQL limits (graphql/limits.py), checked before anything runs: lexical tokens of a document, its
    # estimated cost (fields times the page sizes of the lists around them), nesting depth and aliases
    # (0 turns the depth, alias or token limit off; the cost limit stays, it also bounds the other checks).
    # A query running longer than the time budget is cancelled (0: no budget); mutations have their own.
    graphql_max_tokens: int = Field(default=5000, ge=0)
    graphql_max_cost: int = Field(default=10_000_000, gt=0)
    graphql_max_depth: int = Field(default=15, ge=0)
    graphql_max_aliases: int = Field(default=100, ge=0)
    graphql_timeout_s: float = Field(default=30.0, ge=0)
    # Seconds an authenticated API key is trusted without asking the database (0: ask every time).
    # Changes made through this process take effect at once; other replicas see them within this delay.
    auth_cache_seconds: float = 2.0
    # Seconds use cases, feedback keys, models and attachments looked up by data-plane requests are
    # trusted without a query (0: ask every time); same rule: this process's changes apply at once.
    registry_cache_seconds: float = 2.0
    # Rate limits and budgets (docs/usage-and-limits.md). With a Redis URL (env ADAPTIVE_REDIS_URL) the
    # counters live in Redis and every replica enforces one limit together; without it each process counts
    # alone (per-replica limits). Every key this server writes starts with the prefix.
    redis_url: str | None = None
    redis_prefix: str = "adaptive:"
    # Seconds the limits set on keys, users and use cases, and the spend against budgets read from the usage
    # roll-ups, are trusted without a query (this process's own changes and charges apply at once).
    usage_cache_seconds: float = Field(default=2.0, ge=0)
    # A JSON file of prices per model ({"<model key or provider's model id>": {"input": 2.5,
    # "output": 10, "cached_input": 1.25}}, dollars per million tokens): a model added without prices takes
    # its row's (docs/usage-and-limits.md).
    price_table: Path | None = None
    # Datasets, recipes and artifacts live here (default: DATA_DIR/files); any mounted path works.
    files_dir: Path | None = None
    # Largest dataset accepted (one upload, or all parts of a chunked upload), in bytes.
    max_dataset_bytes: int = 1024 * 1024 * 1024
    # A dataset from filters with more rows than this is written in the background (status PROCESSING).
    dataset_inline_rows: int = Field(default=10_000, ge=0)
    max_recipe_bytes: int = 50 * 1024 * 1024
    # Deriving a recipe's JSON schema imports its code in a subprocess, under this time limit.
    recipe_schema_timeout_s: float = 120.0
    # Run user code (recipes, schema probes, custom graders) without the bubblewrap sandbox when this
    # machine cannot provide one. Unsafe: such code can read the server's data and secrets.
    allow_unsandboxed_code: bool = False
    # Register the recipes shipped in adaptive_engine/recipe/builtin at start (in the background).
    builtin_recipes: bool = True
    # Seconds one call of a job to this server may take (an eval's chat call on a busy CPU can take minutes).
    job_client_timeout_s: float = Field(default=3600.0, gt=0)
    # How often the job runner looks at queued and running jobs.
    job_poll_interval_s: float = Field(default=0.5, gt=0)
    # Jobs the local pool runs at once (default: half the CPU cores, at least one).
    local_job_slots: int | None = None
    # A Ray cluster's dashboard address (http://host:8265) adds the compute pool "ray".
    ray_address: str | None = None
    ray_num_gpus: int = 0
    # How a job's process reaches this server (default: http://HOST:PORT, loopback for a wildcard host).
    callback_url: str | None = None
    # A/B tests: observations per arm before a decision; seconds between evaluations (0: on demand only).
    ab_test_min_observations: int = 50
    ab_test_evaluation_interval_s: float = 5.0
    # Standardized effect (difference of means / sd) the A/B metric test is tuned to detect fastest.
    ab_test_mde: float = 0.2
    # Online grading: seconds between two passes over new live completions (0 turns the loop off).
    online_grading_interval_s: float = 10.0

    # Notifications: outbound timeout, attempts (multishot), first retry delay (doubles each time), how often
    # the sender looks for work, and the largest message sent.
    notify_timeout_s: float = 10.0
    notify_max_attempts: int = 5
    notify_backoff_s: float = 2.0
    notify_poll_interval_s: float = Field(default=1.0, gt=0)
    notify_max_message_bytes: int = 256 * 1024
    # Whether outbound calls to URLs users register (webhooks, reward servers, external models) may reach
    # private and loopback addresses (link-local and cloud metadata ones never): true suits the default single
    # self-hosted machine; see server/outbound.py. The old name ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS still works.
    allow_private_networks: bool = Field(
        default=True,
        validation_alias=AliasChoices("ADAPTIVE_ALLOW_PRIVATE_NETWORKS", "ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS"),
    )

    # Housekeeping: seconds between two passes (0: off); hours a chunked upload may sit idle before it and
    # its parts are removed (0: never); days finished notification events and deliveries are kept (0: forever).
    housekeeping_interval_s: float = Field(default=600.0, ge=0)
    upload_expiry_hours: float = Field(default=24.0, ge=0)
    event_retention_days: float = Field(default=30.0, ge=0)

    # The web console: hours a browser session lasts, and the folder of its build (default: the repo's
    # console/dist, made by `make serve`; without a build `/` says how to make one).
    console_session_hours: float = Field(default=12.0, gt=0)
    console_dir: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'engine.db').resolve()}"

    @property
    def resolved_files_dir(self) -> Path:
        return (self.files_dir or self.data_dir / "files").resolve()

    @property
    def resolved_callback_url(self) -> str:
        if self.callback_url:
            return self.callback_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
