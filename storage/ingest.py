"""Ingesting files: discover, hash, parse, chunk and commit each file, then embed what lacks a vector.

Two phases, both resumable by running them again:
1. Index: each file is read once, hashed (unchanged files are skipped), parsed, chunked and written with
   all its chunks in one transaction, so it is keyword-searchable (FTS5) the moment it commits and a
   `kill -9` can never leave half a file or a duplicate behind.
2. Embed: chunks without a vector are embedded in batches, each batch committed on its own; an interrupted
   run leaves the rest for the next call (or the GUI's background worker via `embed_pending`).

Per-file problems become `Outcome(status="failed", reason=...)` and the batch moves on; nothing already
stored is touched for a file that fails. Reasons never contain file content.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlite_utils import Database

from storage.chunking import Chunk, chunk_document
from storage.documents import Documents
from storage.embeddings import Embedder, to_blob
from storage.parsers import ParsedDoc, ParseError, kind_of, parse
from storage.parsers.discover import DEFAULT_MAX_BYTES, discover

log = logging.getLogger(__name__)

Status = Literal["added", "updated", "skipped", "failed"]


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress bars: `phase` is "index" (files) or "embed" (chunks)."""

    phase: str
    done: int
    total: int
    rate: float  # items per second so far
    eta_s: float | None
    current: str = ""  # a file name, never content


@dataclass(frozen=True)
class Outcome:
    path: str
    status: Status
    reason: str = ""
    chunks: int = 0


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    embedded: int = 0
    pending_vectors: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    def counts(self) -> dict[str, int]:
        return {s: len(self.by_status(s)) for s in ("added", "updated", "skipped", "failed")}

    @property
    def chunks(self) -> int:
        return sum(o.chunks for o in self.outcomes)


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class _Meter:
    def __init__(self, phase: str, total: int, progress: ProgressFn | None) -> None:
        self.phase, self.total, self.progress = phase, total, progress
        self.start = time.monotonic()
        self.done = 0

    def step(self, n: int = 1, current: str = "") -> None:
        self.done += n
        if self.progress is None:
            return
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.progress(Progress(self.phase, self.done, self.total, rate, eta, current))


class Ingester:
    """Owns one ingest run over a store's database; use from the thread that owns the connection."""

    def __init__(self, db: Callable[[], Database], embedder: Embedder | None = None, embed_batch: int = 256) -> None:
        self.docs = Documents(db)
        self._embedder = embedder
        self.embed_batch = embed_batch

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def add(
        self,
        paths: Iterable[str | Path],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        embed: bool = True,
    ) -> Summary:
        started = time.monotonic()
        stop = should_stop or (lambda: False)
        found, refused = discover(paths, include, exclude, max_bytes)
        summary = Summary(outcomes=[Outcome(r.path, "failed", r.reason) for r in refused])
        meter = _Meter("index", len(found), progress)
        for cand in found:
            if stop():
                summary.cancelled = True
                break
            summary.outcomes.append(self.index_file(cand.path, max_bytes))
            meter.step(current=cand.path.name)
        if embed and not summary.cancelled:
            summary.embedded = self.embed_pending(progress, stop)
            summary.cancelled = stop() and self.docs.count_unembedded() > 0
        summary.pending_vectors = self.docs.count_unembedded()
        summary.seconds = time.monotonic() - started
        return summary

    def index_file(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Outcome:
        """Read, hash, parse, chunk and commit one file; any problem becomes a failed Outcome."""
        key = str(path)
        try:
            data, mtime = _read(path, max_bytes)
        except ParseError as exc:
            return Outcome(key, "failed", str(exc))
        digest = hashlib.sha256(data).hexdigest()
        if self.docs.file_hash(key) == digest:
            return Outcome(key, "skipped", "unchanged")
        try:
            parsed = parse(path.name, data)
        except ParseError as exc:
            return Outcome(key, "failed", str(exc))
        except (MemoryError, RecursionError) as exc:
            return Outcome(key, "failed", f"too complex to parse ({type(exc).__name__})")
        except Exception as exc:  # a parser bug must not sink the batch; the type only, never content
            # No exc_info: a parser's message or traceback locals can quote the file's content.
            log.error("parser crashed on a %s file (%s)", kind_of(path), type(exc).__name__)
            return Outcome(key, "failed", f"could not parse ({type(exc).__name__})")
        docs: list[tuple[ParsedDoc, list[Chunk]]] = [(d, chunk_document(d)) for d in parsed]
        updated, n = self.docs.replace_file(key, kind_of(path), digest, len(data), mtime, docs)
        return Outcome(key, "updated" if updated else "added", chunks=n)

    def embed_pending(self, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> int:
        """Embed every chunk that lacks a vector, one committed batch at a time; returns how many."""
        stop = should_stop or (lambda: False)
        total = self.docs.count_unembedded()
        if not total:
            return 0
        self.embedder.load()
        meter = _Meter("embed", total, progress)
        done = 0
        while not stop():
            rows = self.docs.unembedded(self.embed_batch)
            if not rows:
                break
            texts = [(f"{heading}\n{text}" if heading else text) for _, heading, text in rows]
            vectors = self.embedder.embed(texts)
            done += self.docs.add_vectors(
                self.embedder.model_name, [(r[0], to_blob(v)) for r, v in zip(rows, vectors, strict=True)]
            )
            meter.step(len(rows))
        return done

    def forget_missing(self) -> list[str]:
        """Forget indexed files that no longer exist on disk."""
        gone = [p for p in self.docs.paths() if not Path(p).exists()]
        self.docs.forget_paths(gone)
        return gone


def _read(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes (at most max_bytes, else refused) and its mtime, from one open handle."""
    try:
        # O_NONBLOCK: a path swapped for a FIFO since discovery must not block the open; fstat then refuses it.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(info.st_mode):
                raise ParseError("not a regular file (a named pipe, socket or device)")
            mtime = info.st_mtime
            data = f.read(max_bytes + 1)
    except PermissionError:
        raise ParseError("permission denied") from None
    except IsADirectoryError:
        raise ParseError("is a folder") from None
    except OSError as exc:
        raise ParseError(f"cannot read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise ParseError(f"over the size cap ({max_bytes / 2**20:.1f} MB)")
    if not data:
        raise ParseError("empty file (0 bytes)")
    return data, mtime
