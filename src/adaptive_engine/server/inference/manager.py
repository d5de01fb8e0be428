"""The inference manager (``Platform.inference``): which backend serves which registered model.

The registry records what is wanted (a model row's status PENDING after a deploy); the manager does
the work: it builds the backend from the row, loads it in the background and moves the row to ONLINE,
or to ERROR with the reason. External models need no loading: their backend is built on first use.
On start it registers the bundled models on a fresh data dir and reloads the local models that were
online before the restart.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.refs import gateway_text
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.errors import NotFound, Unavailable
from adaptive_engine.server.inference.backends.anthropic import AnthropicBackend
from adaptive_engine.server.inference.backends.base import (
    Backend,
    BackendError,
    BackendLoadError,
    failure_kind,
)
from adaptive_engine.server.inference.backends.external import (
    ExternalBackend,
    ExternalModelConfig,
    HttpPool,
    make_http_client,
)
from adaptive_engine.server.inference.backends.local import (
    LocalChatBackend,
    LocalEmbeddingBackend,
    LocalModelSpec,
    bundled_chat_spec,
    bundled_embedding_path,
)
from adaptive_engine.server.inference.gateway import GatewayConfig
from adaptive_engine.server.notify.sender import announce_model_status
from adaptive_engine.server.observability.metrics import LiveReadings, Metrics, Reading
from adaptive_engine.server.outbound import OutboundGuard

log = logging.getLogger("adaptive_engine.inference")

BUNDLED_CHAT = "smollm2-135m-instruct"
BUNDLED_EMBEDDING = "all-minilm-l6-v2"
BUNDLED = {
    BUNDLED_CHAT: {"name": "SmolLM2 135M Instruct", "kind": "chat"},
    BUNDLED_EMBEDDING: {"name": "all-MiniLM-L6-v2", "kind": "embedding"},
}
# Registry provider names -> the external backend's.
EXTERNAL_PROVIDERS = {"open_ai": "openai", "azure": "azure", "google": "google", "anthropic": "anthropic"}


class InferenceManager:
    """Owns every backend of the process. Start/stop with the app (it is one of ``app.state.services``)."""

    def __init__(self, settings: Any, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metrics.watch(LiveReadings(self._engine_readings))
        self._backends: dict[uuid.UUID, Backend] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[Backend]] = {}
        # External models' endpoints were registered by users: their pool resolves names through the outbound
        # guard. The vLLM processes this server starts on loopback use a pool of their own.
        self._guard = OutboundGuard(settings.allow_private_networks)
        self._http: HttpPool | None = None
        self._own_http: HttpPool | None = None
        self._sessionmaker: Any = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def model_cache_dir(self) -> Path:
        configured = getattr(self.settings, "model_cache_dir", None)
        return Path(configured) if configured else Path(self.settings.data_dir) / "models"

    # ------------------------------------------------------------------ service lifecycle

    async def start(self, app: Any) -> None:
        self._sessionmaker = app.state.sessionmaker
        self._http = make_http_client(guard=self._guard)
        self._own_http = make_http_client()
        async with unit_of_work(self._sessionmaker) as session:
            if self.settings.bundled_models:
                await self._register_bundled(session)
            # Local models online before a restart come back, loaded in the background. Their rows are left
            # as they are: on a database shared by replicas, ONLINE is what the others serve (flipping it to
            # PENDING made every replica answer 503 while this one loaded), and a request here for one not
            # loaded yet waits for its load (backend_for).
            rows = (
                (
                    await session.execute(
                        select(orm.Model).where(
                            orm.Model.is_external.is_(False), orm.Model.status.in_(("ONLINE", "PENDING"))
                        )
                    )
                )
                .scalars()
                .all()
            )
            to_load = []
            for model in rows:
                source = model.source or {}
                if not (source.get("bundled") or source.get("path")):
                    continue  # nothing this process could load (a row written by hand): left as it is
                if source.get("bundled") and not self.settings.bundled_models:
                    continue
                to_load.append(model.id)
        for model_id in to_load:
            await self.request_load(model_id)

    async def stop(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        for task in self._loading.values():
            task.cancel()
        await asyncio.gather(*self._loading.values(), return_exceptions=True)
        self._loading.clear()
        for backend in self._backends.values():
            try:
                await backend.unload()
            except Exception:  # stopping must go on
                log.exception("unloading a backend failed")
        self._backends.clear()
        for pool in (self._http, self._own_http):
            if pool is not None:
                await pool.aclose()
        self._http = self._own_http = None

    async def _register_bundled(self, session: Any) -> None:
        existing = set((await session.execute(select(orm.Model.key).where(orm.Model.key.in_(BUNDLED)))).scalars())
        for key, info in BUNDLED.items():
            if key in existing:
                continue
            try:
                size = _bundled_size(key)
            except BackendLoadError as error:
                log.warning("bundled model %s is not installed: %s", key, error.message)
                continue
            session.add(
                orm.Model(
                    key=key,
                    name=info["name"],
                    kind=info["kind"],
                    provider="local",
                    source={"bundled": key},
                    status="PENDING",
                    size=size,
                )
            )

    # ------------------------------------------------------------------ what the registry calls

    async def request_load(self, model_id: uuid.UUID) -> None:
        """Start loading in the background; the model row ends ONLINE or ERROR."""
        if model_id in self._backends or model_id in self._loading:
            return
        task = asyncio.create_task(self._load(model_id), name=f"load-model-{model_id}")
        self._loading[model_id] = task
        task.add_done_callback(lambda t: self._loaded_or_failed(model_id, t))

    def _loaded_or_failed(self, model_id: uuid.UUID, task: asyncio.Task) -> None:
        if self._loading.get(model_id) is task:
            del self._loading[model_id]
        if not task.cancelled():
            task.exception()  # retrieved: a failure is recorded on the model row, not raised here

    async def unload(self, model_id: uuid.UUID) -> None:
        task = self._loading.pop(model_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        backend = self._backends.pop(model_id, None)
        if backend is not None:
            await backend.unload()

    async def reconfigure(self, model: orm.Model) -> None:
        """Apply a model's changed gateway config in this process: an external backend is rebuilt on its next
        use; a loaded local one keeps its weights and takes the new fallbacks."""
        if model.is_external:
            # Dropped, not unloaded: calls in flight finish on it (its HTTP pool is the server's).
            self._backends.pop(model.id, None)
            return
        backend = self._backends.get(model.id)
        if backend is not None:
            self._configure(backend, model)

    def apply_compute_config(self, model: orm.Model) -> bool:
        """Give a loaded local chat backend of this process the model's changed compute config (max_seq_len,
        kv_cache_len) at once; True when one took it. Others read it when they next load."""
        apply = getattr(self._backends.get(model.id), "apply_compute", None)
        if apply is None:
            return False
        apply(dict(model.compute_config or {}))
        return True

    def _engine_readings(self) -> list[Reading]:
        """The local batching engines' load, read at each /metrics scrape (vLLM's num_requests_* series)."""
        running, rows, waiting, steps, batched, tokens, widest = [], [], [], [], [], [], []
        for backend in list(self._backends.values()):
            engine = getattr(backend, "engine", None)
            if engine is None:
                continue
            model = (getattr(backend, "name", None) or "local",)
            now_running, now_rows, now_waiting = engine.occupancy()
            running.append((model, now_running))
            rows.append((model, now_rows))
            waiting.append((model, now_waiting))
            steps.append((model, engine.stats.decode_steps))
            batched.append((model, engine.stats.batched_steps))
            tokens.append((model, engine.stats.generated_tokens))
            widest.append((model, engine.stats.max_batch_rows))
        label = ("model",)
        return [
            ("gauge", "local_num_requests_running", "Requests in the local engine's running batch", label, running),
            ("gauge", "local_batch_rows", "Rows (sampled choices) in the local engine's running batch", label, rows),
            ("gauge", "local_num_requests_waiting", "Requests queued for the local engine's batch", label, waiting),
            ("gauge", "local_max_batch_rows", "Widest batch the local engine has run (rows)", label, widest),
            ("counter", "local_decode_steps", "Decode steps of the local engine", label, steps),
            ("counter", "local_batched_decode_steps", "Decode steps that served more than one request", label, batched),
            ("counter", "local_generation_tokens", "Tokens the local engine generated", label, tokens),
        ]

    def loaded(self, model_id: uuid.UUID) -> Backend | None:
        return self._backends.get(model_id)

    def loaded_backends(self) -> dict[uuid.UUID, Backend]:
        return dict(self._backends)

    # ------------------------------------------------------------------ what inference calls

    async def backend_for(self, model: orm.Model) -> Backend:
        """The loaded backend of ``model``; external models are built on first use."""
        backend = self._backends.get(model.id)
        if backend is not None:
            return backend
        if model.is_external:
            backend = self.build_backend(model, None)
            await backend.load()
            return self._backends.setdefault(model.id, backend)
        if model.status != "ONLINE" and model.id not in self._loading:
            reason = f": {model.error}" if model.status == "ERROR" and model.error else ""
            raise Unavailable(f"model '{model.key}' is not online (status {model.status}{reason})")
        # Online in the registry but not in this process (restart, another replica loaded it): load here.
        await self.request_load(model.id)
        task = self._loading.get(model.id)
        if task is not None:
            try:
                return await asyncio.shield(task)
            except BackendError as error:
                raise Unavailable(f"model '{model.key}' failed to load: {error.message}") from error
        backend = self._backends.get(model.id)
        if backend is None:
            raise Unavailable(f"model '{model.key}' is not loaded")
        return backend

    # ------------------------------------------------------------------ loading

    async def _load(self, model_id: uuid.UUID) -> Backend:
        # The read session is closed before any status write: holding it while _set_status asks the
        # pool for a second connection deadlocks once many models load at once.
        async with self._sessionmaker() as session:
            model = await session.get(orm.Model, model_id)
            if model is None:
                raise NotFound(f"model {model_id} not found")
            try:
                backend: Backend | None = self.build_backend(model, await _backbone(session, model))
                build_error: BackendError | None = None
            except BackendError as error:
                backend, build_error = None, error
            key = model.key
        if build_error is not None or backend is None:
            await self._set_status(model_id, "ERROR", build_error.message if build_error else "no backend")
            raise build_error or BackendLoadError("no backend")
        try:
            await backend.load()
        except asyncio.CancelledError:
            await backend.unload()
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
            log.warning("model %s failed to load: %s", key, message)
            await self._set_status(model_id, "ERROR", message)
            raise BackendLoadError(message) from exc
        self._backends[model_id] = backend
        await self._set_status(model_id, "ONLINE", None)
        log.info("model %s is online", key)
        return backend

    async def _set_status(self, model_id: uuid.UUID, status: str, error: str | None) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            model = await session.get(orm.Model, model_id)
            if model is not None:
                changed = model.status != status
                model.status, model.error = status, error
                if changed and status in ("ONLINE", "ERROR"):
                    await announce_model_status(session, model)

    def build_backend(self, model: orm.Model, backbone: orm.Model | None) -> Backend:
        backend = self._build_backend(model, backbone)
        self._configure(backend, model)
        return backend

    def _configure(self, backend: Backend, model: orm.Model) -> None:
        backend.fallbacks = GatewayConfig.of(model.source).fallbacks
        backend.gateway = gateway_text((model.source or {}).get("gateway"))
        retries, key = self.metrics.upstream_retries, model.key
        backend.on_retry = lambda error: retries(key, failure_kind(error)).inc()

    def _build_backend(self, model: orm.Model, backbone: orm.Model | None) -> Backend:
        source = model.source or {}
        if model.is_external:
            provider = EXTERNAL_PROVIDERS.get(model.provider)
            if provider is None:
                raise BackendLoadError(f"provider '{model.provider}' is not supported")
            gateway = GatewayConfig.of(source)
            settings = self.settings
            config = ExternalModelConfig(
                provider=provider,  # type: ignore[arg-type]
                external_model_id=str(source.get("external_model_id") or ""),
                api_key=model.secret or "",
                endpoint=source.get("endpoint"),
                api_version=source.get("api_version"),
                timeout=float(
                    gateway.first_byte_timeout_s
                    or source.get("timeout")
                    or float(getattr(settings, "external_timeout_s", 60.0))
                ),
                connect_timeout=gateway.connect_timeout_s or getattr(settings, "external_connect_timeout_s", None),
                total_timeout=gateway.total_timeout_s,
                max_retries=(
                    gateway.max_retries
                    if gateway.max_retries is not None
                    else getattr(settings, "external_max_retries", 2)
                ),
                defaults=gateway.defaults,
            )
            if provider == "anthropic":
                return AnthropicBackend(config, self._http, self._guard)
            return ExternalBackend(config, self._http, self._guard)
        if model.kind == "embedding":
            path = bundled_embedding_path() if source.get("bundled") else source.get("path")
            if not path:
                raise BackendLoadError(f"model '{model.key}' has no weights folder")
            if self.settings.inference_backend == "vllm":
                return self._vllm_backend(model, LocalModelSpec(path=str(path)))
            return LocalEmbeddingBackend(str(path), name=model.key)
        if self.settings.inference_backend == "vllm":
            return self._vllm_backend(model, self.local_spec(model, backbone))
        spec = self.local_spec(model, backbone)
        options: dict[str, Any] = {
            "name": model.key,
            "max_batch_rows": self.settings.local_max_batch_rows,
            "compute": dict(model.compute_config or {}),
        }
        if getattr(self.settings, "local_engine", "transformers") == "llamacpp":
            from adaptive_engine.server.inference.backends import llamacpp

            reason = llamacpp.cannot_serve(spec)
            if reason is None:
                return llamacpp.LlamaCppChatBackend(spec, **options)
            log.info("model %s is served by transformers: llama.cpp cannot serve it (%s)", model.key, reason)
        return LocalChatBackend(spec, **options)

    def _vllm_backend(self, model: orm.Model, weights: LocalModelSpec) -> Backend:
        from adaptive_engine.server.inference.backends.vllm import VllmBackend, VllmSpec

        settings = self.settings
        spec = VllmSpec(
            model=weights,
            name=model.key,
            kind=model.kind,
            command=shlex.split(settings.vllm_command),
            extra_args=shlex.split(settings.vllm_args),
            startup_timeout_s=settings.vllm_startup_timeout_s,
            compute=dict(model.compute_config or {}),
        )
        model_id = model.id
        backend: VllmBackend | None = None

        def exited(reason: str) -> None:
            # The serving process ended on its own: the model is no longer online, and says why.
            if backend is not None and self._backends.get(model_id) is backend:
                del self._backends[model_id]
                task = asyncio.get_running_loop().create_task(self._set_status(model_id, "ERROR", reason))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        backend = VllmBackend(spec, self._own_http, on_exit=exited)
        return backend

    def local_spec(self, model: orm.Model, backbone: orm.Model | None) -> LocalModelSpec:
        source = model.source or {}
        if source.get("bundled") == BUNDLED_CHAT:
            return bundled_chat_spec(str(self.model_cache_dir / model.key))
        path = source.get("path")
        if not path:
            raise BackendLoadError(f"model '{model.key}' has no weights folder")
        base = self.local_spec(backbone, None) if model.is_adapter and backbone is not None else None
        # An adapter's cache holds its GGUF LoRA form when llama.cpp serves it.
        cache = str(self.model_cache_dir / model.key) if base is not None else None
        return LocalModelSpec(path=str(path), base=base, cache_dir=cache)


async def _backbone(session: Any, model: orm.Model) -> orm.Model | None:
    if model.backbone_id is None:
        return None
    return await session.get(orm.Model, model.backbone_id)


def _bundled_size(key: str) -> int:
    if key == BUNDLED_CHAT:
        spec = bundled_chat_spec(None)
        assert spec.gguf_file is not None
        return (Path(spec.path) / spec.gguf_file).stat().st_size
    folder = Path(bundled_embedding_path())
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
