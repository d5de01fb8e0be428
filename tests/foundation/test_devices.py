"""Device and dtype choice for serving and training, checked without a GPU (the answers torch would give
are passed in). The GPU run itself is bench/gpu_check.py; its figures are in bench/gpu_results.md."""

from __future__ import annotations

from pathlib import Path

import torch

from adaptive_engine.devices import pick_device, serving_dtype, training_bf16
from adaptive_engine.recipe.training import TrainSettings
from adaptive_engine.recipe.training.base import common_args


def test_device_is_cuda_only_when_a_gpu_is_seen():
    assert pick_device(None, cuda_available=True) == "cuda"
    assert pick_device(None, cuda_available=False) == "cpu"
    assert pick_device("cpu", cuda_available=True) == "cpu"  # an explicit choice wins
    assert pick_device("cuda:1", cuda_available=False) == "cuda:1"
    assert pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_serving_dtype_is_bf16_on_a_gpu_that_has_it():
    assert serving_dtype("cuda", bf16_supported=True) is torch.bfloat16
    assert serving_dtype("cuda:0", bf16_supported=True) is torch.bfloat16
    assert serving_dtype("cuda", bf16_supported=False) == "auto"  # no fp16: it overflows where fp32 did not
    assert serving_dtype("cpu", bf16_supported=True) == "auto"
    assert serving_dtype("mps", bf16_supported=True) == "auto"


def test_training_mixed_precision_only_on_a_gpu():
    assert training_bf16("cuda", bf16_supported=True)
    assert not training_bf16("cuda", bf16_supported=False)
    assert not training_bf16("cpu", bf16_supported=True)


def test_trainer_arguments_follow_the_device(tmp_path: Path):
    cpu = common_args(TrainSettings(device="cpu"), tmp_path)
    assert cpu["use_cpu"] and not cpu["bf16"]
    gpu = common_args(TrainSettings(device="cuda"), tmp_path)
    assert not gpu["use_cpu"]
    assert gpu["bf16"] == bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    default = common_args(TrainSettings(), tmp_path)
    assert default["use_cpu"] == (not torch.cuda.is_available())
