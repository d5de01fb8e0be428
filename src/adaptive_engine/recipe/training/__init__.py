"""Training cores (TRL + PEFT) the built-in recipes run: plain library code, usable without a server."""

from .base import (
    LoraSettings,
    TrainingCancelled,
    TrainingError,
    TrainingInputError,
    TrainResult,
    TrainSettings,
    adapter_base_dir,
    is_adapter_dir,
)
from .data import check_template, dpo_records, prompt_records, sft_records
from .dpo import train_dpo
from .grpo import GrpoSettings, train_grpo, wrap_reward
from .sft import train_sft

__all__ = [
    "GrpoSettings",
    "LoraSettings",
    "TrainResult",
    "TrainSettings",
    "TrainingCancelled",
    "TrainingError",
    "TrainingInputError",
    "adapter_base_dir",
    "check_template",
    "dpo_records",
    "is_adapter_dir",
    "prompt_records",
    "sft_records",
    "train_dpo",
    "train_grpo",
    "train_sft",
    "wrap_reward",
]
