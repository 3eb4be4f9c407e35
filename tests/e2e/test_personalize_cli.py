"""`hearth personalize` / `hearth adapters` as a user runs them: real CLI subprocess, real encrypted store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hearth(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEARTH_HOME": str(home), "HEARTH_PASSPHRASE": "e2e passphrase", "HEARTH_KEYRING": "0"}
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_too_little_data_says_how_much_is_needed(hearth_home: Path) -> None:
    result = hearth("personalize", "--max-minutes", "1", home=hearth_home)
    assert result.returncode == 1
    assert "Not enough text to personalize yet" in result.stderr and "needed" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_and_adapters_list_when_nothing_ran(hearth_home: Path) -> None:
    status = hearth("personalize", "status", "--json", home=hearth_home)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "idle"
    listing = hearth("adapters", "list", home=hearth_home)
    assert listing.returncode == 0 and "no adapters yet" in listing.stdout
    assert hearth("personalize", "pause", home=hearth_home).returncode == 1
    assert hearth("adapters", "use", "nope", home=hearth_home).returncode == 1


@pytest.mark.slow
def test_eval_reports_base_perplexity_as_json(hearth_home: Path, tmp_path: Path) -> None:
    text = tmp_path / "sample.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 40)
    result = hearth("personalize", "eval", str(text), "--json", home=hearth_home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["adapter"] is None and out["adapter_ppl"] is None
    assert 1.0 < out["base_ppl"] < 50.0


def test_eval_of_a_missing_file_is_a_clear_error(hearth_home: Path, tmp_path: Path) -> None:
    result = hearth("personalize", "eval", str(tmp_path / "missing.txt"), home=hearth_home)
    assert result.returncode == 1 and "Cannot read missing.txt" in result.stderr
