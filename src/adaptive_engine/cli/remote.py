"""`adaptive-engine use-cases|models|datasets|jobs|recipes …`: everyday operations on a running server, through
the SDK (``--base-url`` / ``ADAPTIVE_BASE_URL``, ``--api-key`` / ``ADAPTIVE_API_KEY``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from adaptive_engine.cli.errors import fail

if TYPE_CHECKING:
    from adaptive_engine.sdk import Adaptive
    from adaptive_engine.sdk.types import Job, Model

BaseUrl = Annotated[str, typer.Option("--base-url", envvar="ADAPTIVE_BASE_URL", help="The server")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="ADAPTIVE_API_KEY", show_default=False, help="An API key of the server"),
]
UseCaseOption = Annotated[
    str | None,
    typer.Option("--use-case", envvar="ADAPTIVE_USE_CASE", show_default=False, help="The use case (key or id)"),
]
DEFAULT_URL = "http://127.0.0.1:8000"
# Log lines one request of `jobs logs` reads (the server's most).
LOG_WINDOW = 10_000

# Progress bars and spinners (on stdout, drawn only on a terminal).
console = Console()


def _typer(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


use_cases_app = _typer("Use cases of a running server")
models_app = _typer("Models of a running server")
datasets_app = _typer("Datasets of a running server")
jobs_app = _typer("Jobs of a running server: list, follow, cancel")
recipes_app = _typer("Recipes of a running server")


def _client(base_url: str, api_key: str | None, use_case: str | None = None) -> Adaptive:
    from adaptive_engine.sdk import Adaptive

    if not api_key:
        fail("no API key: pass --api-key or set ADAPTIVE_API_KEY")
    client = Adaptive(base_url, api_key=api_key)
    if use_case:
        client.set_default_use_case(use_case)
    return client


def _need(use_case: str | None) -> str:
    if not use_case:
        fail("no use case: pass --use-case or set ADAPTIVE_USE_CASE")
    return use_case


def _when(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class _Rows:
    """A plain table: columns aligned with two spaces, no trailing blanks, nothing wrapped (easy to grep)."""

    def __init__(self, *columns: str) -> None:
        self.rows: list[tuple[str, ...]] = [columns]

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(" ".join(str(cell).split()) for cell in cells))

    def print(self) -> None:
        widths = [max(len(row[i]) for row in self.rows) for i in range(len(self.rows[0]))]
        for row in self.rows:
            typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- use cases ------------------------------------------------------------------------------------------------
@use_cases_app.command("list")
def use_cases_list(base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The use cases you can read, with their models (* marks the default one)."""
    table = _Rows("KEY", "NAME", "MODELS")
    for use_case in _client(base_url, api_key).use_cases.list():
        models = ", ".join(f"{s.model.key}{'*' if s.is_default else ''}" for s in use_case.model_services)
        table.add_row(use_case.key, use_case.name, models)
    table.print()


@use_cases_app.command("create")
def use_cases_create(
    key: Annotated[str, typer.Argument(help="Its key (letters, digits, - and _)")],
    name: Annotated[str | None, typer.Option(help="A display name (default: the key)")] = None,
    description: Annotated[str | None, typer.Option(help="What it is for")] = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Create a use case (owned by your team)."""
    created = _client(base_url, api_key).use_cases.create(key=key, name=name, description=description)
    console.print(f"created use case {created.key} ({created.id})")


# -- models ---------------------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The models of the registry: status, where they run, the use cases they serve."""
    table = _Rows("KEY", "STATUS", "SERVED BY", "USE CASES")
    for model in _client(base_url, api_key).models.list():
        served_by = (model.provider_name or model.provider or "external") if model.is_external else "this server"
        table.add_row(
            model.key, model.online, served_by, ", ".join(u.key for u in getattr(model, "use_cases", None) or [])
        )
    table.print()


@models_app.command("attach")
def models_attach(
    model: Annotated[str, typer.Argument(help="The model's key (see `models list`)")],
    use_case: UseCaseOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is online, showing its status")] = False,
    default: Annotated[bool, typer.Option("--default", help="Make it the use case's default model")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Attach a model to a use case and deploy it."""
    client = _client(base_url, api_key, _need(use_case))
    started = time.monotonic()
    with console.status(f"attaching {model}…") as status:

        def show(current: Model) -> None:
            status.update(f"{current.key}: {current.online} ({time.monotonic() - started:.0f} s)")

        service = client.models.attach(model, wait=wait, make_default=default, on_progress=show if wait else None)
    console.print(
        f"{service.model.key} attached to {use_case}: {service.model.online}"
        + (" (default)" if service.is_default else "")
    )


# -- datasets -------------------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list(use_case: UseCaseOption = None, base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The datasets of a use case."""
    table = _Rows("KEY", "KIND", "ROWS", "BYTES", "CREATED")
    for dataset in _client(base_url, api_key, _need(use_case)).datasets.list():
        table.add_row(
            dataset.key or dataset.id,
            dataset.kind,
            str(dataset.records or 0),
            str(dataset.size_bytes or 0),
            _when(dataset.created_at),
        )
    table.print()


@datasets_app.command("upload")
def datasets_upload(
    file: Annotated[Path, typer.Argument(help="A JSONL file", exists=True, dir_okay=False, readable=True)],
    key: Annotated[str, typer.Option("--key", help="The dataset's key")],
    name: Annotated[str | None, typer.Option(help="A display name (default: the key)")] = None,
    use_case: UseCaseOption = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Upload a JSONL file as a dataset (every line is checked; a bad one is named)."""
    client = _client(base_url, api_key, _need(use_case))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
        dataset = client.datasets.upload(
            str(file), dataset_key=key, name=name, on_progress=lambda sent, total: progress.update(task, completed=sent)
        )
    console.print(f"uploaded {dataset.key}: {dataset.records} rows of kind {dataset.kind}")


# -- jobs -----------------------------------------------------------------------------------------------------
@jobs_app.command("list")
def jobs_list(
    use_case: UseCaseOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Jobs, newest first (of one use case with --use-case)."""
    page = _client(base_url, api_key).jobs.list(first=limit, use_case=use_case)
    table = _Rows("ID", "NAME", "KIND", "STATUS", "PROGRESS", "CREATED")
    for job in page.nodes:
        table.add_row(job.id, job.name, job.kind, job.status, f"{job.progress:.0%}", _when(job.created_at))
    table.print()


def _new_lines(seen: list[str], lines: list[str]) -> list[str]:
    """The lines of a log read again that were not shown yet (the server gives its last LOG_WINDOW lines)."""
    if len(lines) < LOG_WINDOW:
        return lines[len(seen) :] if lines[: len(seen)] == seen else lines
    last = seen[-1] if seen else None
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] == last:
            return lines[index + 1 :]
    return lines


@jobs_app.command("logs")
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="The job's id")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends")] = False,
    tail: Annotated[int, typer.Option(min=1, max=LOG_WINDOW, help="Lines to show first")] = 200,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """A job's log (its last lines; with --follow, then what it writes until it ends)."""
    from adaptive_engine.sdk.resources.jobs import JOB_FINAL_STATUSES

    client = _client(base_url, api_key)
    text = client.jobs.logs(job_id, tail=tail)
    typer.echo(text, nl=False)
    if not follow:
        return
    seen = client.jobs.logs(job_id, tail=LOG_WINDOW).splitlines()
    while True:
        # The status first: lines written before the job ended are read after it, so none is missed.
        finished = client.jobs.get(job_id).status in JOB_FINAL_STATUSES
        lines = client.jobs.logs(job_id, tail=LOG_WINDOW).splitlines()
        for line in _new_lines(seen, lines):
            typer.echo(line)
        seen = lines
        if finished:
            return
        time.sleep(1.0)


def _describe_job(job: Job) -> str:
    stage = next((s for s in job.stages if s.status == "RUNNING"), None)
    parts = [job.status]
    if job.progress_message or (stage and stage.message):
        parts.append(job.progress_message or (stage.message if stage else None) or "")
    if job.metrics:
        latest = job.metrics[-1]
        parts.append(f"step {latest.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(latest.values.items())))
    return " · ".join(p for p in parts if p)


@jobs_app.command("watch")
def jobs_watch(
    job_id: Annotated[str, typer.Argument(help="The job's id")],
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Follow a job with a progress bar and its latest metrics until it ends (status 1 unless it completes)."""
    client = _client(base_url, api_key)
    with Progress(
        TextColumn("{task.fields[name]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        task = progress.add_task("", total=1.0, name=job_id)

        def show(job: Job) -> None:
            progress.update(task, completed=job.progress, description=_describe_job(job), name=job.name)

        job = client.jobs.wait(job_id, on_progress=show)
    if job.status != "COMPLETED":
        fail(f"job {job.id} {job.status}" + (f": {job.error.splitlines()[0]}" if job.error else ""))
    console.print(f"job {job.id} COMPLETED")


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="The job's id")],
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Cancel a pending or running job."""
    job = _client(base_url, api_key).jobs.cancel(job_id)
    console.print(f"job {job.id}: {job.status}")


# -- recipes --------------------------------------------------------------------------------------------------
@recipes_app.command("list")
def recipes_list(use_case: UseCaseOption = None, base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The recipes a use case can run (its own and the built-in ones)."""
    table = _Rows("KEY", "NAME", "BUILT-IN", "DESCRIPTION")
    for recipe in _client(base_url, api_key, _need(use_case)).recipes.list():
        description = (recipe.description or "").strip().splitlines()
        table.add_row(
            recipe.key or recipe.id, recipe.name, "yes" if recipe.builtin else "", description[0] if description else ""
        )
    table.print()


def register(app: typer.Typer) -> None:
    for name, sub in (
        ("use-cases", use_cases_app),
        ("models", models_app),
        ("datasets", datasets_app),
        ("jobs", jobs_app),
        ("recipes", recipes_app),
    ):
        app.add_typer(sub, name=name)
