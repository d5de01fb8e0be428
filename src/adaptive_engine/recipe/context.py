"""RecipeContext: what a running recipe can do with the platform.

On the server a job's process gets a context backed by the server (through our SDK, with an API key
minted for the job and revoked when it ends). ``adaptive-engine recipe run`` gives a local context that
prints progress and metrics and writes artifacts to a folder, for development.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from adaptive_engine.sdk.client import Adaptive
    from adaptive_engine.sdk.resources.job_runtime import JobRuntime

ARTIFACT_KINDS = ("EVALUATION", "CUSTOM", "DATASET", "MODEL")

# Environment a job's process receives from the server.
ENV_BASE_URL = "ADAPTIVE_BASE_URL"
ENV_API_KEY = "ADAPTIVE_API_KEY"
ENV_JOB_ID = "ADAPTIVE_JOB_ID"
ENV_USE_CASE = "ADAPTIVE_USE_CASE"
ENV_WORK_DIR = "ADAPTIVE_JOB_WORK_DIR"
ENV_NUM_GPUS = "ADAPTIVE_JOB_NUM_GPUS"
# Seconds a job's call to the server may take (default JOB_CLIENT_TIMEOUT_S).
ENV_CLIENT_TIMEOUT = "ADAPTIVE_JOB_CLIENT_TIMEOUT_S"
# A job's calls can be long and are not stuck: an eval's chat call waits for all the samples of its prompt
# behind other traffic on a busy CPU, a grading call scores a whole batch. A job that does hang is ended by
# cancelling it (its process is killed), so the limit only has to catch a server that is gone.
JOB_CLIENT_TIMEOUT_S = 3600.0
# "local" when the job runs on the server's machine (model folders are registered in place);
# otherwise (Ray) they are uploaded to the server.
ENV_EXECUTOR = "ADAPTIVE_JOB_EXECUTOR"
# A credential the job was given (a model hub token), set only when it has one.
ENV_JOB_SECRET = "ADAPTIVE_JOB_SECRET"


def client_timeout_s() -> float:
    raw = os.environ.get(ENV_CLIENT_TIMEOUT)
    if not raw:
        return JOB_CLIENT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_CLIENT_TIMEOUT} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{ENV_CLIENT_TIMEOUT} must be > 0, not {raw!r}")
    return value


class _Backend(Protocol):
    def report_progress(self, fraction: float, message: str | None) -> None: ...
    def log_metrics(self, step: int, values: dict[str, float]) -> None: ...
    def save_artifact(self, name: str, data: bytes, kind: str, metadata: dict[str, Any]) -> str: ...
    def dataset_bytes(self, key: str) -> bytes: ...
    def register_model(self, spec: dict[str, Any]) -> dict[str, Any]: ...


def _check_kind(kind: str) -> str:
    kind = kind.upper()
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"artifact kind must be one of {', '.join(ARTIFACT_KINDS)}, not '{kind}'")
    return kind


def _check_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in values.items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric '{name}' is not a finite number: {value!r}")
        checked[str(name)] = number
    return checked


class DatasetFormatError(ValueError):
    """A dataset line that is not a JSON object; the message names the dataset and the line."""


class RecipeContext:
    """Passed to ``@recipe_main`` functions as ``ctx``."""

    def __init__(
        self,
        backend: _Backend,
        *,
        job_id: str | None = None,
        use_case: str | None = None,
        work_dir: Path | None = None,
        num_gpus: int = 0,
        client_factory: Any = None,
    ) -> None:
        self._backend = backend
        self.job_id = job_id
        self.use_case = use_case
        self.num_gpus = num_gpus
        self.work_dir = Path(work_dir or Path.cwd())
        self._client_factory = client_factory
        self._client: Adaptive | None = None

    # -- the platform ---------------------------------------------------------------------------------
    @property
    def client(self) -> Adaptive:
        """Our SDK, authenticated for this job, with the job's use case as its default."""
        if self._client is None:
            if self._client_factory is None:
                raise RuntimeError("no server is configured for this run: pass --base-url and --api-key")
            self._client = self._client_factory()
        return self._client

    def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Progress of the job, between 0 and 1, with an optional message."""
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress must be between 0 and 1, not {fraction}")
        self._backend.report_progress(fraction, message)

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Record named numbers (loss, reward …) at a training step."""
        self._backend.log_metrics(int(step), _check_metrics(values))

    def save_artifact(
        self, name: str, data: bytes, kind: str = "CUSTOM", metadata: dict[str, Any] | None = None
    ) -> str:
        """Store bytes as an artifact of the job; returns the artifact's id."""
        if not name:
            raise ValueError("an artifact needs a name")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("artifact data must be bytes")
        return self._backend.save_artifact(name, bytes(data), _check_kind(kind), dict(metadata or {}))

    def load_dataset(self, key: str) -> Iterator[dict[str, Any]]:
        """Iterate over the rows (dicts) of a dataset of the job's use case."""
        for number, line in enumerate(self._backend.dataset_bytes(key).decode("utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    # The file's line, not the parser's (which counts within the one line it was given).
                    raise DatasetFormatError(
                        f"{key} line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
                    ) from None

    def register_model(
        self,
        path: str | Path,
        key: str,
        name: str | None = None,
        *,
        base_model: str | None = None,
        kind: str = "chat",
        attach: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a model folder the recipe produced (weights in Hugging Face layout, or a PEFT adapter)
        in the model registry, with its lineage (this job, its recipe, ``base_model``), and attach it to
        the job's use case unless ``attach`` is False. Returns the model's id and key."""
        folder = Path(path).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder not found: {folder}")
        spec = {
            "path": str(folder),
            "key": key,
            "name": name or key,
            "base_model": base_model,
            "kind": kind,
            "attach": attach,
            "metadata": dict(metadata or {}),
        }
        return self._backend.register_model(spec)

    def log(self, message: str) -> None:
        """A line in the job's log."""
        print(message, flush=True)

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_env(cls) -> RecipeContext:
        """The context of a job started by the server (reads ADAPTIVE_* variables)."""
        base_url = os.environ[ENV_BASE_URL]
        api_key = os.environ[ENV_API_KEY]
        job_id = os.environ[ENV_JOB_ID]
        use_case = os.environ.get(ENV_USE_CASE) or None

        def make_client() -> Adaptive:
            from adaptive_engine.sdk.client import Adaptive

            client = Adaptive(base_url, api_key=api_key, timeout_secs=client_timeout_s())
            client.set_default_use_case(use_case)
            return client

        ctx = cls(
            _ServerBackend(
                make_client, job_id, use_case, upload_models=os.environ.get(ENV_EXECUTOR, "local") != "local"
            ),
            job_id=job_id,
            use_case=use_case,
            work_dir=Path(os.environ.get(ENV_WORK_DIR) or Path.cwd()),
            num_gpus=int(os.environ.get(ENV_NUM_GPUS) or 0),
            client_factory=make_client,
        )
        return ctx

    @classmethod
    def local(
        cls,
        output_dir: Path,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        use_case: str | None = None,
    ) -> RecipeContext:
        """A development context: progress and metrics are printed, artifacts and the models registered
        go to ``output_dir``; datasets are local JSONL paths, or keys on a server when one is given."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        factory = None
        if base_url:

            def factory() -> Adaptive:
                from adaptive_engine.sdk.client import Adaptive

                client = Adaptive(base_url, api_key=api_key)
                client.set_default_use_case(use_case)
                return client

        return cls(
            _LocalBackend(output_dir, factory, use_case),
            use_case=use_case,
            work_dir=output_dir,
            client_factory=factory,
        )


class _ServerBackend:
    def __init__(
        self, make_client: Callable[[], Adaptive], job_id: str, use_case: str | None, upload_models: bool = False
    ) -> None:
        self._make_client = make_client
        self._upload_models = upload_models
        self._job_id = job_id
        self._use_case = use_case
        self._runtime: JobRuntime[Adaptive] | None = None

    @property
    def runtime(self) -> JobRuntime[Adaptive]:
        if self._runtime is None:
            from adaptive_engine.sdk.resources.job_runtime import JobRuntime

            self._runtime = JobRuntime(self._make_client())
        return self._runtime

    def report_progress(self, fraction: float, message: str | None) -> None:
        self.runtime.report_progress(self._job_id, fraction, message)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self.runtime.log_metrics(self._job_id, step, values)

    def save_artifact(self, name: str, data: bytes, kind: str, metadata: dict[str, Any]) -> str:
        return self.runtime.upload_artifact(self._job_id, name, data, kind, metadata)

    def dataset_bytes(self, key: str) -> bytes:
        return self.runtime.download_dataset(key, self._use_case)

    def register_model(self, spec: dict[str, Any]) -> dict[str, Any]:
        if not self._upload_models:
            return self.runtime.register_model(self._job_id, spec)
        return self.runtime.upload_model(self._job_id, spec, _zip_folder(Path(spec["path"])))


def _zip_folder(folder: Path) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return buffer.getvalue()


class _LocalBackend:
    def __init__(self, output_dir: Path, make_client: Callable[[], Adaptive] | None, use_case: str | None) -> None:
        self.output_dir = output_dir
        self._make_client = make_client
        self._use_case = use_case
        self._count = 0

    def report_progress(self, fraction: float, message: str | None) -> None:
        print(f"[progress] {fraction:.0%}" + (f" {message}" if message else ""), file=sys.stderr, flush=True)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        print(f"[metrics] step {step}: " + json.dumps(values), file=sys.stderr, flush=True)
        with open(self.output_dir / "metrics.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps({"step": step, "values": values}) + "\n")

    def save_artifact(self, name: str, data: bytes, kind: str, metadata: dict[str, Any]) -> str:
        self._count += 1
        folder = self.output_dir / "artifacts"
        folder.mkdir(exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        (folder / safe).write_bytes(data)
        with open(folder / "index.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, "file": safe, "kind": kind, "metadata": metadata}) + "\n")
        print(f"[artifact] {kind} {name} ({len(data)} bytes) -> {folder / safe}", file=sys.stderr, flush=True)
        return f"local-{self._count}"

    def dataset_bytes(self, key: str) -> bytes:
        path = Path(key)
        if path.is_file():
            return path.read_bytes()
        if self._make_client is None:
            raise FileNotFoundError(f"dataset '{key}' is not a local file and no server is configured")
        from adaptive_engine.sdk.resources.job_runtime import JobRuntime

        return JobRuntime(self._make_client()).download_dataset(key, self._use_case)

    def register_model(self, spec: dict[str, Any]) -> dict[str, Any]:
        with open(self.output_dir / "models.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(spec) + "\n")
        print(f"[model] {spec['key']} from {spec['path']}", file=sys.stderr, flush=True)
        return {"id": None, "key": spec["key"]}
