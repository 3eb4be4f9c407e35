"""The house layering, checked: imports point one way and heavy libraries stay out of startup."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "PySide6", "mcp", "fastapi")


def _imports(package: str) -> set[tuple[str, str]]:
    """(module file, imported top-level package) for every import statement in a package."""
    found = set()
    for file in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(str(file.relative_to(ROOT)), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(file.relative_to(ROOT)), node.module.split(".")[0]))
    return found


def test_storage_and_personalize_never_import_desktop() -> None:
    for package in ("storage", "personalize"):
        offenders = sorted(file for file, mod in _imports(package) if mod == "desktop")
        assert offenders == [], f"{package} must not import desktop: {offenders}"


def test_storage_never_imports_personalize() -> None:
    offenders = sorted(file for file, mod in _imports("storage") if mod == "personalize")
    assert offenders == []


def test_engine_never_imports_qt() -> None:
    offenders = sorted(
        file for file, mod in _imports("desktop") if mod == "PySide6" and not file.startswith("desktop/ui/")
    )
    assert offenders == [], f"only desktop/ui may import PySide6: {offenders}"


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
