"""`hearth doctor`: what Hearth runs on, where it keeps data, and anything that would stop the app."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import stat
import sys

from desktop.engine import models
from desktop.services import Services
from storage import paths
from storage.errors import KnownError
from storage.hardening import core_dumps_disabled

PACKAGES = [
    "hearth", "llama-cpp-python", "sqlcipher3", "sqlite-utils", "keyring", "PySide6-Essentials",
    "torch", "transformers", "peft", "sentence-transformers", "fastapi", "uvicorn",
]  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="versions, model paths, threads, data dir, and problems")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=doctor_command)


def gather() -> tuple[dict[str, object], list[str]]:
    """(facts, problems): problems are sentences saying what would block the app."""
    from desktop.engine import physical_cores

    problems: list[str] = []
    facts: dict[str, object] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in PACKAGES},
        "threads": physical_cores(),
        "logical_cpus": os.cpu_count(),
    }
    home = paths.home()
    mode = stat.S_IMODE(home.stat().st_mode)
    facts["data_dir"] = str(home)
    facts["data_dir_mode"] = oct(mode)
    facts["free_disk_gib"] = round(shutil.disk_usage(home).free / 2**30, 1)
    if mode & 0o077:
        problems.append(f"the data dir {home} is readable by other users (mode {oct(mode)}); run chmod 700 on it")
    if not os.access(home, os.W_OK):
        problems.append(f"the data dir {home} is not writable")
    model_facts = []
    for model in models.list_models():
        try:
            info = models.check_chat_model(model.path)
            model_facts.append({"name": model.name, "path": str(model.path), "arch": info.architecture})
        except KnownError as exc:
            model_facts.append({"name": model.name, "path": str(model.path), "error": str(exc)})
            problems.append(str(exc))
    facts["models"] = model_facts
    facts["active_model"] = models.active_model().name
    for module, why in [
        ("llama_cpp", "chat"), ("sqlcipher3", "the encrypted store"), ("PySide6", "the desktop app"),
    ]:  # fmt: skip
        if importlib.util.find_spec(module) is None:
            problems.append(f"{module} is not installed: {why} cannot work")
    facts["keyring"] = _keyring_backend()
    facts["key_custody"] = _custody()
    disabled = core_dumps_disabled()
    facts["core_dumps"] = {True: "disabled", False: "enabled", None: "not applicable"}[disabled]
    if disabled is False:
        problems.append("core dumps are enabled: a crash could write the database key to disk")
    return facts, problems


def doctor_command(args: argparse.Namespace, services: Services) -> int:
    facts, problems = gather()
    if args.json:
        print(json.dumps({**facts, "problems": problems}, indent=2))
        return 1 if problems else 0
    versions = facts.pop("versions")
    for key, value in facts.items():
        if key != "models":
            print(f"{key:16} {value}")
    for model in facts["models"]:  # type: ignore[attr-defined]
        print(f"{'model':16} {model['name']}: {model.get('error') or model['path']}")
    for name, version in versions.items():  # type: ignore[attr-defined]
        print(f"{'package':16} {name} {version}")
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nNo problems found.")
    return 0


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _keyring_backend() -> str:
    try:
        import keyring

        backend = keyring.get_keyring()
        return f"{type(backend).__module__}.{type(backend).__name__}"
    except Exception as exc:  # keyring import can fail on broken D-Bus setups; report, don't crash
        return f"unavailable ({type(exc).__name__})"


def _custody() -> str:
    key_file = paths.key_file()
    if not key_file.exists():
        return "not set up yet"
    try:
        return str(json.loads(key_file.read_text("utf-8")).get("custody", "unknown"))
    except (OSError, ValueError):
        return "unreadable key file"
