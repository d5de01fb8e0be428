"""The model-conversion job: bring a model from the Hugging Face hub (or a model folder on the server) into
the model registry.

The ``importHfModel`` mutation queues it; it is not a recipe of the catalogue. It runs like any job (its
own process, progress and log, registration through :meth:`RecipeContext.register_model`), downloads with
``huggingface_hub`` (the token arrives in the job's environment, never in its arguments), checks the model
is a causal language model whose config and tokenizer load, and registers the folder, not attached to any
use case. Every failure ends the job with a ``ConversionError`` line that names the cause.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
from adaptive_engine.recipe.context import ENV_JOB_SECRET

JOB_KIND = "MODEL_CONVERSION"
# Files of a hub repository a transformers model needs (config, tokenizer, chat template, weights); the
# rest (other formats, docs, onnx …) stays on the hub. *.bin weights are fetched only when there are no
# safetensors.
HUB_FILES = ["*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.txt", "*.jinja"]
LEGACY_WEIGHTS = ["*.bin"]


class ConversionError(RuntimeError):
    """Why the model could not be imported (it becomes the job's error)."""


class Config(InputConfig):
    model_id: str
    output_model_key: str
    output_model_name: str
    # "hub": model_id is a repository id; "folder": an absolute path on the machine that runs the job.
    source: Literal["hub", "folder"] = "hub"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def download(repo_id: str, into: Path, token: str | None) -> None:
    import httpx
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fetch(patterns: list[str]) -> None:
        snapshot_download(repo_id, token=token, local_dir=str(into), allow_patterns=patterns)

    try:
        fetch(HUB_FILES)
        if not any(into.glob("*.safetensors")):
            fetch(LEGACY_WEIGHTS)
    except GatedRepoError as exc:
        raise ConversionError(
            f"model {repo_id} is gated on the model hub: accept its terms there and pass a token that"
            f" has access ({_one_line(exc)})"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ConversionError(
            f"model {repo_id} was not found on the model hub (or it is private and the token cannot see it)"
        ) from exc
    except RevisionNotFoundError as exc:
        raise ConversionError(f"model {repo_id} has no such revision on the model hub: {_one_line(exc)}") from exc
    except HfHubHTTPError as exc:
        raise ConversionError(f"the model hub refused to send {repo_id}: {_one_line(exc)}") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError, httpx.TransportError) as exc:
        # No network, offline mode, DNS or connection failures: the library's cause says which.
        reason = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
        raise ConversionError(f"could not reach the model hub to download {repo_id}: {_one_line(reason)}") from exc
    except OSError as exc:
        raise ConversionError(f"downloading {repo_id} failed: {_one_line(exc)}") from exc


def check_model(folder: Path, what: str) -> dict[str, Any]:
    """Raise ConversionError unless ``folder`` holds a causal LM whose config and tokenizer load."""
    if not (folder / "config.json").is_file():
        raise ConversionError(f"{what} holds no config.json: it is not a transformers model")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ConversionError(f"{what} holds no weights (*.safetensors or *.bin files)")
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except Exception as exc:  # whatever transformers raises is the reason
        raise ConversionError(f"the config of {what} does not load: {_one_line(exc)}") from exc
    architectures = list(getattr(config, "architectures", None) or [])
    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    if architectures:
        causal = any(a in causal_classes or a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    else:
        causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if not causal:
        found = ", ".join(architectures) or f"model type {config.model_type}"
        raise ConversionError(
            f"{what} is not a causal language model ({found}): only text-generation models can be imported"
        )
    try:
        AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        raise ConversionError(f"the tokenizer of {what} does not load: {_one_line(exc)}") from exc
    return {"model_type": config.model_type, "architectures": architectures}


def _link_or_copy(source: str, target: str) -> None:
    # Hard links cost no space; weights are written once and replaced, never edited in place.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_folder(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".git", ".cache"))


@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    target = ctx.work_dir / "model"
    if config.source == "folder":
        source = Path(config.model_id)
        what = f"model folder {config.model_id}"
        if not source.is_dir():
            raise ConversionError(f"{what} does not exist on the machine that runs the job")
        ctx.report_progress(0.1, f"checking {what}")
        info = check_model(source, what)
        ctx.report_progress(0.5, "copying into the model store")
        copy_folder(source, target)
    else:
        what = f"model {config.model_id}"
        ctx.report_progress(0.05, f"downloading {config.model_id} from the model hub")
        download(config.model_id, target, os.environ.get(ENV_JOB_SECRET) or None)
        ctx.report_progress(0.7, f"checking {what}")
        info = check_model(target, what)
    ctx.report_progress(0.9, "registering the model")
    ctx.register_model(
        target,
        key=config.output_model_key,
        name=config.output_model_name,
        attach=False,
        metadata={"source": config.source, "model_id": config.model_id, **info},
    )
    ctx.report_progress(1.0, f"model {config.output_model_key} is in the registry")
