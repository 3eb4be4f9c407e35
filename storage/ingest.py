"""Ingesting files: discover, hash, parse, chunk and commit each file, then embed what lacks a vector.

Two phases, both resumable by running them again:
1. Index: each file is read once, hashed (unchanged files are skipped), parsed, chunked and written with
   all its chunks in one transaction, so it is keyword-searchable (FTS5) the moment it commits and a
   `kill -9` can never leave half a file or a duplicate behind.
2. Embed: chunks without a vector are embedded in batches, each batch committed on its own; an interrupted
   run leaves the rest for the next call (or the GUI's background worker via `embed_pending`).

Per-file problems become `Outcome(status="failed", reason=...)` and the batch moves on; nothing already
stored is touched for a file that fails. Reasons never contain file content. Files are parsed in a child
process with a time and memory limit (storage/parsers/worker.py), and `should_stop` is honoured within
~0.1 s while a file parses and between embedding slices sized to take under half a second, so Stop is
prompt and every transaction small (chat writes interleave on the same store).
"""

from __future__ import annotations

import contextlib
import hashlib
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
from storage.parsers import ParsedDoc, ParseError, kind_of
from storage.parsers.discover import DEFAULT_MAX_BYTES, discover
from storage.parsers.worker import ParseLimits, ParserProcess, Stopped

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


_SLICE_S = 0.4  # target seconds per embedding slice

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

    def __init__(
        self,
        db: Callable[[], Database],
        embedder: Embedder | None = None,
        embed_batch: int = 256,
        limits: ParseLimits | None = None,
    ) -> None:
        self.docs = Documents(db)
        self._embedder = embedder
        self.embed_batch = embed_batch  # rows read per query; sorted by length so slices pad little
        self.limits = limits or ParseLimits()

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
        on_found: Callable[[list[str]], None] | None = None,
        on_file: Callable[[Outcome], None] | None = None,
        parser: ParserProcess | None = None,
        trust_stat: bool = False,
    ) -> Summary:
        """Index (then embed) the files under `paths`.

        `on_found` gets the paths about to be indexed once discovery is done, `on_file` each file's outcome
        as it is committed: the watcher keeps its "waiting" list with them. `parser`: a child kept by the
        caller across runs (the watcher: no interpreter start per change); by default one for this run.
        `trust_stat`: a file whose size and modification time match the stored ones is skipped unread (the
        watcher's start-up scan: reading every file of a large folder at each start would cost minutes).
        """
        started = time.monotonic()
        stop = should_stop or (lambda: False)
        found, refused = discover(paths, include, exclude, max_bytes)
        summary = Summary(outcomes=[Outcome(r.path, "failed", r.reason) for r in refused])
        if on_found is not None:
            on_found([str(c.path) for c in found])
        meter = _Meter("index", len(found), progress)
        with contextlib.nullcontext(parser) if parser is not None else ParserProcess(self.limits) as parser:
            for cand in found:
                if stop():
                    summary.cancelled = True
                    break
                try:
                    if trust_stat and self.docs.file_stat(str(cand.path)) == (cand.size, cand.mtime):
                        outcome = Outcome(str(cand.path), "skipped", "unchanged (same size and time)")
                    else:
                        outcome = self.index_file(cand.path, max_bytes, parser, stop)
                except Stopped:
                    summary.cancelled = True
                    break
                summary.outcomes.append(outcome)
                if on_file is not None:
                    on_file(outcome)
                meter.step(current=cand.path.name)
        self.docs.record_results(
            {o.path: o.reason for o in summary.by_status("failed")},
            [o.path for o in summary.outcomes if o.status != "failed"],
        )
        if embed and not summary.cancelled:
            summary.embedded = self.embed_pending(progress, stop)
            summary.cancelled = stop() and self.docs.count_unembedded() > 0
        summary.pending_vectors = self.docs.count_unembedded()
        summary.seconds = time.monotonic() - started
        return summary

    def index_file(
        self, path: Path, max_bytes: int, parser: ParserProcess, should_stop: StopFn = lambda: False
    ) -> Outcome:
        """Read, hash, parse, chunk and commit one file; any problem becomes a failed Outcome.

        Raises Stopped when should_stop() turns true while the file parses (nothing of it is stored).
        """
        key = str(path)
        try:
            data, mtime = _read(path, max_bytes)
        except ParseError as exc:
            return Outcome(key, "failed", str(exc))
        size = len(data)
        digest = hashlib.sha256(data).hexdigest()
        if self.docs.file_hash(key) == digest:
            return Outcome(key, "skipped", "unchanged")
        try:
            parsed = parser.parse(path.name, data, should_stop)
        except ParseError as exc:
            return Outcome(key, "failed", str(exc))
        del data  # a 50 MB file need not stay in memory while its chunks are written
        docs: list[tuple[ParsedDoc, list[Chunk]]] = [(d, chunk_document(d)) for d in parsed]
        updated, n = self.docs.replace_file(key, kind_of(path), digest, size, mtime, docs)
        return Outcome(key, "updated" if updated else "added", chunks=n)

    def embed_pending(self, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> int:
        """Embed every chunk that lacks a vector, one committed batch at a time; returns how many."""
        stop = should_stop or (lambda: False)
        total = self.docs.count_unembedded()
        if not total:
            return 0
        meter = _Meter("embed", total, progress)
        meter.step(0)  # the bar shows before the load: a first run converts (and may quantize) the model, ~1 min
        self.embedder.load()
        done = 0
        size = self.embedder.batch_size
        pending: list[tuple[int, str, str]] = []
        while True:
            if not pending:
                pending = self.docs.unembedded(self.embed_batch)
                pending.sort(key=lambda r: -len(r[1]) - len(r[2]))  # similar lengths share a slice: less padding
            if not pending or stop():
                break
            piece, pending = pending[:size], pending[size:]
            started = time.monotonic()
            vectors = self.embedder.embed([(f"{heading}\n{text}" if heading else text) for _, heading, text in piece])
            done += self.docs.add_vectors(
                self.embedder.model_name, [(r[0], to_blob(v)) for r, v in zip(piece, vectors, strict=True)]
            )
            meter.step(len(piece))
            # Slices of ~0.4 s keep Stop prompt and the store free for chat between them, on any CPU.
            per_row = (time.monotonic() - started) / len(piece)
            size = max(4, min(self.embedder.batch_size, int(_SLICE_S / max(per_row, 1e-6))))
        return done


def _read(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes (at most max_bytes, else refused) and its mtime, from one open handle.

    Opened non-blocking and checked with fstat before any read: a file swapped for a named pipe after
    discovery would otherwise block the reader forever (opening a FIFO waits for a writer).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise ParseError("not a regular file (it became a named pipe, socket or device)")
            if st.st_size > max_bytes:
                raise ParseError(f"over the size cap ({max_bytes / 2**20:.1f} MB)")
            mtime = st.st_mtime
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
