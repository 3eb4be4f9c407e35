"""`hearth --self-test --screenshot` as a subprocess, the way the installer's smoke test runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _hearth(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "desktop.cli", "--threads", "2", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def test_self_test_answers_and_writes_a_png(tmp_path: Path, hearth_home: Path, passphrase: str) -> None:
    shot = tmp_path / "shot.png"
    env = {**os.environ, "HEARTH_KEYRING": "0", "HEARTH_PASSPHRASE": passphrase}
    done = _hearth("--self-test", "--screenshot", str(shot), env=env)
    assert done.returncode == 0, done.stderr
    assert "self-test ok" in done.stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (hearth_home / "hearth.db").exists()  # HEARTH_HOME was respected, not replaced by a temp dir


def test_self_test_names_the_missing_passphrase_of_an_existing_store(
    home_with_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "HEARTH_KEYRING": "0"}
    env.pop("HEARTH_PASSPHRASE", None)
    done = _hearth("--self-test", env=env, timeout=120)
    assert done.returncode == 1
    assert "HEARTH_PASSPHRASE" in done.stderr
