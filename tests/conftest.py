"""Shared fixtures: every test gets its own HEARTH_HOME and never sees the user's real data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    monkeypatch.delenv("HEARTH_PASSPHRASE", raising=False)
    return home


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    from desktop.models import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def engine(bundled_model: Path):
    """The real bundled model, loaded once per test session (about 2 s)."""
    from desktop.engine import Engine

    eng = Engine.load(bundled_model, n_ctx=2048)
    yield eng
    eng.close()
