"""The trainer's dtype follows the CPU: bf16 only with native bf16 matmuls, and the AVX2 path can be forced."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalize import train
from personalize.train import TrainConfig
from storage.cpu import AVX2_ONLY_ENV


def test_auto_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AVX2_ONLY_ENV, raising=False)  # the CPU's own answer, also inside bench/avx2_path.sh
    flags = Path("/proc/cpuinfo").read_text()
    native = " amx_bf16" in flags or " avx512_bf16" in flags
    assert train.use_bf16(TrainConfig()) is native


def test_the_no_bf16_path_can_be_forced_on_any_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AVX2_ONLY_ENV, "1")
    assert train.use_bf16(TrainConfig()) is False
    assert str(train.base_dtype(TrainConfig())) == "torch.float32"
    assert train.use_bf16(TrainConfig(bf16="on")) is True  # an explicit setting still wins


def test_off_means_fp32() -> None:
    assert train.use_bf16(TrainConfig(bf16="off")) is False
