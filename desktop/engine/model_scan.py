"""Find the GGUF chat models other local apps already downloaded (Ollama, LM Studio, GPT4All, Jan, the Hugging
Face hub cache, llama.cpp's cache), so a user with a 4 GB model on disk does not fetch it again.

Reads directory listings, Ollama's JSON manifests and GGUF headers (`gguf_file.inspect`), nothing else: no
model is loaded, no file is hashed (Ollama blobs and hub-cache blobs are named by their sha256, which is
reported for free), no socket is opened. The places are other programs' folders, so they are built here
rather than in `storage.paths` (which owns Hearth's own files); each honours that program's own override
variable (OLLAMA_MODELS, HF_HUB_CACHE / HF_HOME, LLAMA_CACHE).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from desktop.engine.gguf_file import inspect
from desktop.engine.model_fit import estimate_ram
from storage.errors import KnownError

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
# Shards after the first of a split GGUF ("-00002-of-00003.gguf") are not models of their own.
_LATER_SHARD = re.compile(r"-0*([2-9]|\d{2,})-of-\d+\.gguf$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FoundModel:
    """One model file found on disk, described from its header alone."""

    name: str  # how its app calls it: "llama3.2:1b" (Ollama), "publisher/repo/file" (LM Studio), ...
    source: str  # "ollama", "lmstudio", "gpt4all", "jan", "huggingface", "llama.cpp"
    path: str
    architecture: str
    quantization: str
    size_bytes: int
    ram_bytes: int  # estimated at Hearth's default context (weights + KV cache + buffers)
    context_length: int | None
    chat: bool  # Hearth can chat with it: supported architecture and a chat template
    personalization: bool  # Hearth can train a personal adapter on it
    sha256: str | None  # known without hashing (content-addressed stores), else None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Place:
    source: str
    root: Path
    kind: str  # "ollama" (manifests + blobs) or "files" (a folder tree of .gguf files)


def places(home: Path | None = None, env: dict[str, str] | None = None) -> list[Place]:
    """Where each app keeps its models on this OS, overrides first; folders that do not exist are kept."""
    home = home or Path.home()
    env = dict(os.environ) if env is None else env
    data = _data_dirs(home, env)
    found: list[Place] = []
    ollama = [Path(env["OLLAMA_MODELS"])] if env.get("OLLAMA_MODELS") else []
    ollama += [home / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    found += [Place("ollama", p, "ollama") for p in ollama]
    lmstudio = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    found += [Place("lmstudio", p, "files") for p in lmstudio]
    found += [Place("gpt4all", d / "nomic.ai" / "GPT4All", "files") for d in data]
    jan = [home / "jan" / "models"] + [d / "Jan" / "data" / "models" for d in data]
    found += [Place("jan", p, "files") for p in jan]
    hf_home = Path(env["HF_HOME"]) if env.get("HF_HOME") else home / ".cache" / "huggingface"
    hub = Path(env["HF_HUB_CACHE"]) if env.get("HF_HUB_CACHE") else hf_home / "hub"
    found.append(Place("huggingface", hub, "files"))
    llama_cache = [Path(env["LLAMA_CACHE"])] if env.get("LLAMA_CACHE") else []
    llama_cache += [home / ".cache" / "llama.cpp", home / "Library" / "Caches" / "llama.cpp"]
    if env.get("LOCALAPPDATA"):
        llama_cache.append(Path(env["LOCALAPPDATA"]) / "llama.cpp")
    found += [Place("llama.cpp", p, "files") for p in llama_cache]
    return _unique(found)


def _data_dirs(home: Path, env: dict[str, str]) -> list[Path]:
    """Per-user application-data folders: XDG on Linux, Application Support on macOS, AppData on Windows."""
    dirs = [Path(env["XDG_DATA_HOME"])] if env.get("XDG_DATA_HOME") else []
    dirs += [home / ".local" / "share", home / "Library" / "Application Support"]
    dirs += [Path(env[k]) for k in ("LOCALAPPDATA", "APPDATA") if env.get(k)]
    if sys.platform == "win32":
        dirs += [home / "AppData" / "Local", home / "AppData" / "Roaming"]
    return dirs


def _unique(items: list[Place]) -> list[Place]:
    seen: set[str] = set()
    out = []
    for place in items:
        key = str(place.root)
        if key not in seen:
            seen.add(key)
            out.append(place)
    return out


def scan(home: Path | None = None, env: dict[str, str] | None = None) -> list[FoundModel]:
    """Every model GGUF in every known place, each physical file once (hub snapshots link to blobs)."""
    results: list[FoundModel] = []
    seen: set[tuple[int, int]] = set()
    for place in places(home, env):
        if not place.root.is_dir():
            continue
        candidates = _ollama(place.root) if place.kind == "ollama" else _gguf_files(place.root)
        for name, path, sha in candidates:
            try:
                stat = path.stat()
            except OSError:
                continue  # a dangling link or a file removed while scanning
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            model = _describe(place, name, path, sha)
            if model is not None:
                seen.add((stat.st_dev, stat.st_ino))
                results.append(model)
    return results


def _describe(place: Place, name: str, path: Path, sha: str | None) -> FoundModel | None:
    from desktop.engine.models import CHAT_ARCHITECTURES
    from personalize.base import SUPPORTED_ARCHITECTURES

    try:
        info = inspect(path)
    except KnownError:
        return None  # vision projectors, adapters, partial downloads: not chat models
    if sha is None and place.source == "huggingface":
        sha = _hub_blob_sha(path)
    return FoundModel(
        name=name,
        source=place.source,
        path=str(path),
        architecture=info.architecture,
        quantization=info.file_type,
        size_bytes=info.size_bytes,
        ram_bytes=estimate_ram(info).total,
        context_length=info.context_length,
        chat=info.architecture in CHAT_ARCHITECTURES and info.chat_template is not None,
        personalization=info.architecture in SUPPORTED_ARCHITECTURES,
        sha256=sha,
    )


def registry_name(scan_name: str) -> str:
    """A scan name made into a registry name: 'llama3.2:1b' stays, 'org/repo/file.gguf' -> 'file'."""
    return scan_name.rsplit("/", 1)[-1].removesuffix(".gguf").lower()


def _ollama(root: Path) -> Iterator[tuple[str, Path, str | None]]:
    """Ollama: manifests/<registry>/<namespace>/<model>/<tag> (JSON) name blobs/sha256-<hex> layers."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        try:
            layers = json.loads(manifest.read_text("utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        for layer in layers:
            if not isinstance(layer, dict) or layer.get("mediaType") != OLLAMA_MODEL_LAYER:
                continue
            digest = str(layer.get("digest", ""))
            algo, _, hexdigest = digest.partition(":")
            if algo != "sha256" or not _SHA256.match(hexdigest):
                continue
            yield _ollama_name(manifest.relative_to(manifests)), root / "blobs" / f"sha256-{hexdigest}", hexdigest


def _ollama_name(rel: Path) -> str:
    parts = rel.parts  # (registry, namespace, model, tag)
    if len(parts) < 3:
        return "/".join(parts)
    registry, *middle, model, tag = parts
    if registry == "registry.ollama.ai" and middle == ["library"]:
        return f"{model}:{tag}"
    return f"{'/'.join([registry, *middle, model])}:{tag}"


def _gguf_files(root: Path) -> Iterator[tuple[str, Path, str | None]]:
    """Every *.gguf under root (following the hub cache's snapshot links), named by its path under root."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.lower().endswith(".gguf") or _LATER_SHARD.search(file):
                continue
            path = Path(folder) / file
            rel = path.relative_to(root)
            yield _files_name(rel), path, None


def _files_name(rel: Path) -> str:
    parts = rel.parts
    # Hub cache: models--org--name/snapshots/<revision>/file.gguf -> org/name/file.gguf
    if len(parts) >= 4 and parts[0].startswith("models--") and parts[1] == "snapshots":
        repo = parts[0].removeprefix("models--").replace("--", "/")
        return "/".join([repo, *parts[3:]])
    return "/".join(parts)


def _hub_blob_sha(path: Path) -> str | None:
    """A hub-cache snapshot file links to blobs/<sha256> for LFS files: its digest, known without hashing."""
    try:
        target = path.resolve()
    except OSError:
        return None
    return target.name if target != path and _SHA256.match(target.name) else None
