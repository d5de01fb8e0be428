"""A PEFT LoRA adapter written as a GGUF LoRA, the form llama.cpp applies on top of its quantized base.

The adapter's two matrices per module are stored as they are (``lora_a`` [r, in], ``lora_b`` [out, r], which
GGUF records in reverse order, as llama.cpp expects), under the base GGUF's tensor names. A base converted to
GGUF for the ``llama`` architecture holds its q and k projections with the rows of each head reordered for its
rotary embedding; ``lora_b`` of those two modules gets the same reordering, or the adapter would add its
update to the wrong rows. PEFT's scale ``alpha / r`` is what llama.cpp computes from ``adapter.lora.alpha``
(rsLoRA's ``alpha / sqrt(r)`` is written as the alpha that gives it).

What llama.cpp cannot apply this way (DoRA, trained biases, fully trained modules, LoRA on the embeddings or
on an architecture whose layout is not handled here) raises :class:`LoraNotConvertible` naming it; the caller
serves such an adapter with the transformers backend instead.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PEFT's module names (a llama-style decoder) -> the base GGUF's tensor names (blk.N.<name>.weight).
MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
# Architectures whose GGUF layout this module knows; the value says whether q/k rows are reordered per head.
ARCHITECTURES = {"llama": True}
_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.((?:self_attn|mlp)\.\w+)\.lora_([AB])\.weight$")
MARKER = "lora-converted-from.json"


class LoraNotConvertible(ValueError):
    """The adapter uses something a GGUF LoRA cannot express; the message names it."""


def _adapter_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    file = folder / "adapter_model.safetensors"
    if file.is_file():
        return load_file(str(file))
    legacy = folder / "adapter_model.bin"
    if legacy.is_file():
        import torch

        return torch.load(str(legacy), map_location="cpu", weights_only=True)
    raise LoraNotConvertible(f"no adapter_model.safetensors in {folder}")


def check_config(config: dict[str, Any]) -> float:
    """The alpha to write (llama.cpp scales by alpha / r), after refusing what cannot be expressed."""
    if config.get("peft_type", "LORA") != "LORA":
        raise LoraNotConvertible(f"peft_type {config.get('peft_type')} is not LoRA")
    if config.get("use_dora"):
        raise LoraNotConvertible("DoRA adapters (use_dora)")
    if (config.get("bias") or "none") != "none":
        raise LoraNotConvertible(f"trained biases (bias={config.get('bias')!r})")
    if config.get("modules_to_save"):
        raise LoraNotConvertible(f"fully trained modules (modules_to_save={config['modules_to_save']})")
    if config.get("alpha_pattern"):
        raise LoraNotConvertible("per-module alphas (alpha_pattern)")
    if config.get("fan_in_fan_out"):
        raise LoraNotConvertible("fan_in_fan_out weights")
    targets = config.get("target_modules") or []
    if isinstance(targets, str):
        raise LoraNotConvertible(f"target_modules given as a pattern ({targets!r})")
    handled = {module.split(".")[-1] for module in MODULES}
    unknown = sorted(set(targets) - handled)
    if unknown:
        raise LoraNotConvertible(f"LoRA on {', '.join(unknown)} (handled: {', '.join(sorted(handled))})")
    r, alpha = int(config.get("r") or 8), float(config.get("lora_alpha") or 8)
    if config.get("rank_pattern") and config.get("use_rslora"):
        raise LoraNotConvertible("rsLoRA with per-module ranks (rank_pattern)")
    # rsLoRA scales by alpha / sqrt(r); llama.cpp computes alpha' / r.
    return alpha * math.sqrt(r) if config.get("use_rslora") else alpha


@dataclass(frozen=True)
class BaseLayout:
    """What the conversion needs to know of the base GGUF (read by llama.cpp when it loads the base)."""

    architecture: str
    heads: int
    kv_heads: int


def architecture(gguf_file: Path) -> str | None:
    """The ``general.architecture`` of a GGUF file, read from its first metadata entries (where writers put
    it) without parsing the rest of the header (the tokenizer's arrays take seconds to read in Python)."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(gguf_file, "rb") as f:
        if f.read(4) != b"GGUF":
            return None
        _version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        for _ in range(min(count, 16)):
            (length,) = struct.unpack("<Q", f.read(8))
            key = f.read(length).decode("utf-8", "replace")
            (kind,) = struct.unpack("<I", f.read(4))
            if kind == 8:  # a string
                (length,) = struct.unpack("<Q", f.read(8))
                value = f.read(length)
                if key == "general.architecture":
                    return value.decode("utf-8", "replace")
            elif kind in sizes:
                f.read(sizes[kind])
            else:  # an array: the architecture was not among the first entries
                return None
    return None


def _reorder_heads(rows: Any, heads: int) -> Any:
    """The row order the GGUF converter gives a llama q/k projection (per head, halves interleaved)."""
    return rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def convert(adapter: Path, base: BaseLayout, out: Path) -> Path:
    """Write the PEFT adapter in ``adapter`` as a GGUF LoRA for a base of layout ``base`` at ``out`` (atomically).
    Tensor names are checked by llama.cpp when it loads the adapter on its base."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    return convert_weights(config, _adapter_weights(adapter), base, out)


def convert_weights(config: dict[str, Any], weights: dict[str, Any], base: BaseLayout, out: Path) -> Path:
    """:func:`convert` of an adapter held in memory: its PEFT config (as a dict) and its LoRA tensors by PEFT's
    state-dict names (a model being trained hands them over without writing a PEFT folder first)."""
    import gguf
    import numpy

    alpha = check_config(config)
    arch, heads, kv_heads = base.architecture, base.heads, base.kv_heads
    if arch not in ARCHITECTURES:
        raise LoraNotConvertible(f"base architecture {arch!r} (handled: {', '.join(sorted(ARCHITECTURES))})")
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in weights.items():
        found = _KEY.search(key)
        if found is None:
            raise LoraNotConvertible(f"adapter tensor {key} is not a LoRA matrix of a decoder layer")
        layer, module, which = found.groups()
        target = MODULES.get(module)
        if target is None:
            raise LoraNotConvertible(f"LoRA on {module} (handled: {', '.join(MODULES)})")
        name = f"blk.{layer}.{target}.weight"
        pairs.setdefault(name, {})[which] = tensor.detach().float().numpy()
    if not pairs:
        raise LoraNotConvertible("the adapter holds no LoRA weights")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=".lora-", suffix=".gguf", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(staging, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name in sorted(pairs):
            pair = pairs[name]
            if set(pair) != {"A", "B"}:
                raise LoraNotConvertible(f"{name} lacks one of its two LoRA matrices")
            a, b = pair["A"], pair["B"]
            if ARCHITECTURES[arch] and (".attn_q." in name or ".attn_k." in name):
                b = _reorder_heads(b, heads if ".attn_q." in name else kv_heads)
            writer.add_tensor(name.removesuffix(".weight") + ".weight.lora_a", numpy.ascontiguousarray(a))
            writer.add_tensor(name.removesuffix(".weight") + ".weight.lora_b", numpy.ascontiguousarray(b))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staging, out)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return out


def _source_stamp(adapter: Path, base_gguf: Path) -> dict[str, Any]:
    files = [
        adapter / "adapter_config.json",
        *(adapter / n for n in ("adapter_model.safetensors", "adapter_model.bin")),
    ]
    stamp: dict[str, Any] = {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()}
    stamp["base"] = [base_gguf.name, base_gguf.stat().st_size]
    return stamp


def cached_lora(adapter: Path, base_gguf: Path, base: BaseLayout, cache_dir: Path) -> Path:
    """The GGUF LoRA of ``adapter`` in ``cache_dir``, converted on first use and again when the adapter changed."""
    out, marker = cache_dir / "lora.gguf", cache_dir / MARKER
    stamp = _source_stamp(adapter, base_gguf)
    try:
        if out.is_file() and json.loads(marker.read_text()) == stamp:
            return out
    except (OSError, ValueError):
        pass
    convert(adapter, base, out)
    marker.write_text(json.dumps(stamp))
    return out
