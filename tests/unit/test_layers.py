"""The house layering, checked: imports point one way (import-linter) and heavy libraries stay out of startup."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "PySide6", "mcp", "fastapi")


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


# Modules that can open a network connection. Only an explicit `hearth models pull` may (model_pull.py);
# the API server binds its listening socket on loopback itself (desktop/api/server.py).
NETWORK_MODULES = ("socket", "http.client", "urllib.request", "httpx", "requests", "aiohttp", "urllib3", "ftplib")
NETWORK_ALLOWED = {"desktop/engine/model_pull.py", "desktop/api/server.py"}


def test_only_the_model_pull_opens_outbound_connections() -> None:
    offenders = []
    for package in ("desktop", "storage", "personalize"):
        for file in (ROOT / package).rglob("*.py"):
            rel = str(file.relative_to(ROOT))
            for node in ast.walk(ast.parse(file.read_text("utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                if any(n == m or n.startswith(f"{m}.") for n in names for m in NETWORK_MODULES):
                    offenders.append(rel)
    assert sorted(set(offenders) - NETWORK_ALLOWED) == []
    assert "desktop/engine/model_pull.py" in offenders  # the check sees the one that does
