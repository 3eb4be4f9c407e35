"""`hearth personalize` / `hearth adapters` as a user runs them: real CLI subprocess, real encrypted store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

PASSPHRASE_ENV = {"HEARTH_PASSPHRASE": "e2e passphrase", "HEARTH_KEYRING": "0"}


def test_too_little_data_says_how_much_is_needed(hearth: Cli) -> None:
    result = hearth("personalize", "--max-minutes", "1", env=PASSPHRASE_ENV)
    assert result.returncode == 1
    assert "Not enough text to personalize yet" in result.stderr and "needed" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_and_adapters_list_when_nothing_ran(hearth: Cli) -> None:
    status = hearth("personalize", "status", "--json", env=PASSPHRASE_ENV)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "idle"
    listing = hearth("adapters", "list", env=PASSPHRASE_ENV)
    assert listing.returncode == 0 and "no adapters yet" in listing.stdout
    assert hearth("personalize", "pause", env=PASSPHRASE_ENV).returncode == 1
    assert hearth("adapters", "use", "nope", env=PASSPHRASE_ENV).returncode == 1


@pytest.mark.slow
def test_eval_reports_base_perplexity_as_json(hearth: Cli, tmp_path: Path) -> None:
    text = tmp_path / "sample.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 40)
    result = hearth("personalize", "eval", str(text), "--json", env=PASSPHRASE_ENV)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["adapter"] is None and out["adapter_ppl"] is None
    assert 1.0 < out["base_ppl"] < 50.0


def test_eval_of_a_missing_file_is_a_clear_error(hearth: Cli, tmp_path: Path) -> None:
    result = hearth("personalize", "eval", str(tmp_path / "missing.txt"), env=PASSPHRASE_ENV)
    assert result.returncode == 1 and "Cannot read missing.txt" in result.stderr
