"""Turning the paths a user names into the files to ingest, with a reason for every file left out.

Folders are walked recursively, following symlinked folders but remembering each real folder, so a link
back to an ancestor is reported as a loop instead of recursing forever. Hidden entries and dependency
folders are passed over silently: nobody means to index `.git`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from storage.parsers import is_supported

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", ".venv", "site-packages"})


@dataclass(frozen=True)
class Candidate:
    path: Path  # absolute, symlinks resolved: the identity of a document
    size: int
    mtime: float


@dataclass(frozen=True)
class Refused:
    path: str
    reason: str


def discover(
    paths: Iterable[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[Candidate], list[Refused]]:
    """Files to ingest and files refused, each once, in a stable order."""
    found: dict[Path, Candidate] = {}
    refused: list[Refused] = []

    def consider(path: Path, st: os.stat_result, named: bool, rel: str) -> None:
        if not named and not is_supported(path):
            return
        if not _wanted(rel, include, exclude):
            return
        if named and not is_supported(path):
            refused.append(Refused(str(path), f"unsupported file type '{path.suffix or path.name}'"))
        elif st.st_size == 0:
            refused.append(Refused(str(path), "empty file (0 bytes)"))
        elif st.st_size > max_bytes:
            refused.append(Refused(str(path), f"over the size cap ({_mb(st.st_size)} > {_mb(max_bytes)})"))
        else:
            real = path.resolve()
            found.setdefault(real, Candidate(real, st.st_size, st.st_mtime))

    for raw in paths:
        root = Path(raw).expanduser().absolute()
        st = _stat(root, refused)
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(root, root, {(st.st_dev, st.st_ino)}, include, exclude, consider, refused)
        elif stat.S_ISREG(st.st_mode):
            consider(root, st, True, root.name)
        else:
            refused.append(Refused(str(root), "not a regular file (a named pipe, socket or device)"))
    return sorted(found.values(), key=lambda c: str(c.path)), refused


def _walk(root, folder, seen, include, exclude, consider, refused) -> None:  # type: ignore[no-untyped-def]
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError:
        refused.append(Refused(str(folder), "permission denied (cannot list folder)"))
        return
    except OSError as exc:
        refused.append(Refused(str(folder), f"cannot list folder ({_why(exc)})"))
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in SKIP_DIRS:
            continue
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        if any(fnmatch(rel, pat) or fnmatch(entry.name, pat) for pat in exclude):
            continue
        st = _stat(path, refused)
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                refused.append(Refused(str(path), "symlink loop (links back to a folder already being read)"))
                continue
            _walk(root, path, seen | {key}, include, exclude, consider, refused)
        elif stat.S_ISREG(st.st_mode):
            consider(path, st, False, rel)
        elif is_supported(path) and _wanted(rel, include, exclude):
            # Named like a document but a pipe, socket or device: reading it could block or never end.
            refused.append(Refused(str(path), "not a regular file (a named pipe, socket or device)"))


def _stat(path: Path, refused: list[Refused]) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError as exc:
        refused.append(Refused(str(path), _why(exc)))
        return None


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "not found (or a broken symlink)"
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


def _wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    if any(fnmatch(rel, p) or fnmatch(name, p) for p in exclude):
        return False
    return not include or any(fnmatch(rel, p) or fnmatch(name, p) for p in include)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"
