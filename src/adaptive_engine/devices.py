"""Where torch work runs: the device, and the dtype the weights are loaded in for serving.

Shared by the server's local backend and by the training cores (which must not import ``server/``).
Nothing here imports torch at import time. The ``cuda_available`` / ``bf16_supported`` arguments exist so
the choice can be checked on a machine without a GPU; left out, torch is asked.
"""

from __future__ import annotations

from typing import Any


def pick_device(device: str | None = None, *, cuda_available: bool | None = None) -> str:
    """``device`` when given, else ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device:
        return device
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "cuda" if cuda_available else "cpu"


def serving_dtype(device: str, *, bf16_supported: bool | None = None) -> Any:
    """The ``dtype`` for ``from_pretrained`` when serving on ``device``.

    On a GPU with bf16, bfloat16: half the memory of the float32 the GGUF is converted to, and the dtype
    the GPU's matrix units are built for; it keeps fp32's range (no overflow, unlike fp16). Elsewhere
    "auto", the dtype the folder was saved in, so CPU answers stay those of float32.
    """
    if not device.startswith("cuda"):
        return "auto"
    import torch

    if bf16_supported is None:
        bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else "auto"


def training_bf16(device: str, *, bf16_supported: bool | None = None) -> bool:
    """Whether the trainer runs in bf16 mixed precision (fp32 master weights) on ``device``."""
    if not device.startswith("cuda"):
        return False
    if bf16_supported is None:
        import torch

        bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(bf16_supported)
