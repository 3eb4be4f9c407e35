"""The one reading of /proc/cpuinfo: benchmarks print what the numeric paths were chosen by."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storage import cpu


def test_describe_names_the_model_and_exactly_the_decisive_flags_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpu.AVX2_ONLY_ENV, raising=False)
    text = Path("/proc/cpuinfo").read_text()
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())  # type: ignore[union-attr]
    model = re.search(r"^model name\s*:(.*)$", text, re.M).group(1).strip()  # type: ignore[union-attr]
    line = cpu.describe()
    assert line.startswith(model)
    listed = set(line.split("; ")[1].split())
    assert listed == {f for f in cpu.DECISIVE if f in flags} or not flags & set(cpu.DECISIVE)
    assert "capped" not in line


def test_describe_says_when_the_avx2_path_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu.AVX2_ONLY_ENV, "1")
    assert cpu.describe().endswith(f"capped at AVX2 ({cpu.AVX2_ONLY_ENV}=1)")
    assert not cpu.native_bf16() and not cpu.int8_dot()
