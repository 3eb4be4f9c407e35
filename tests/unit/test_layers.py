"""The house layering, checked: imports point one way (import-linter) and heavy libraries stay out of startup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "PySide6")


def test_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the layers (front ends -> services -> engine ->
    personalize -> storage) and Qt only in the window."""
    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_startup_imports_stay_light() -> None:
    code = (
        "import sys\n"
        "import desktop.cli, desktop.engine, desktop.engine.conversation, desktop.services\n"
        "import storage.store, storage.search, storage.ingest\n"
        "desktop.cli.build_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"heavy modules imported at startup: {result.stdout.strip()}"
