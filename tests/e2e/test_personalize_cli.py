"""`hearth personalize` / `hearth adapters` as a user runs them: real CLI subprocess, real encrypted store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def add_version(store: Any, **proof: Any) -> str:
    """A registered version with a proof, as a finished run leaves it (the blobs are not loaded by `status`)."""
    from personalize.registry import AdapterRecord, Registry, new_id

    record = AdapterRecord(
        id=new_id(),
        created="2026-01-02T13:04:00",
        base_sha256="0" * 64,
        base_ppl=12.0,
        adapter_ppl=9.0,
        tokens_trained=40_960,
        steps=20,
        **proof,
    )
    Registry(store).add(b"not loaded here", {}, record)
    return record.id


def test_status_shows_every_versions_proof(hearth: Cli, store: Any) -> None:
    samples = [{"prompt": "Dear Ana, the", "truth": " roses are late", "base": " weather", "adapter": " roses bloom"}]
    kept = add_version(store, drift=1.02, seconds=95.0, heldout_tokens=1024, samples=samples * 3)
    refused = add_version(store, drift=1.4, seconds=60.0, refused="it changed the model's general answers too much")
    store.close()

    result = hearth("personalize", "status", "--json")
    assert result.returncode == 0, result.stderr
    versions = {v["id"]: v for v in json.loads(result.stdout)["versions"]}
    assert versions[kept]["gain"] == 0.25 and versions[kept]["drift"] == 1.02
    assert versions[kept]["tokens_trained"] == 40_960 and versions[kept]["seconds"] == 95.0
    assert versions[kept]["samples"] == samples * 3
    assert versions[refused]["refused"] and any("drifted" in w for w in versions[refused]["warnings"])

    text = hearth("personalize", "status")
    assert "gain +25.0% on unseen text" in text.stdout and "drift 1.020x on general text" in text.stdout
    assert "before:    weather" in text.stdout and "after:     roses bloom" in text.stdout

    use = hearth("adapters", "use", refused)
    assert use.returncode == 1 and "drift 1.40x" in use.stderr and "--force" in use.stderr
    assert "Traceback" not in use.stderr
