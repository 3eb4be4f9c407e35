"""Tables for ingested documents: files, their documents (a mailbox holds many), chunks, FTS and vectors.

Everything lives in the encrypted database: chunk text, the FTS5 index over it, and the vectors. One file's
rows are replaced in one transaction (`replace_file`), so a crash leaves either the old or the new version
of the file, never half of each; that is what makes ingestion resumable by simply running it again.

The schema is `m004_documents` in storage/migrations.py. `doc_state.vectors` is a generation counter
bumped by triggers on every vector insert/delete, so a search cache in any process can tell cheaply that
its matrix is stale.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlite_utils import Database

from storage.chunking import Chunk
from storage.errors import KnownError
from storage.parsers import kind_of
from storage.parsers.model import ParsedDoc
from storage.settings import Settings
from storage.timeutil import now

FAILURES_KEY = "documents.failed"  # {path: reason} of files whose last ingest failed
WAITING_KEY = "documents.waiting"  # {owner: [path]} each folder watcher has queued, not yet indexed (storage/watch.py)


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    kind: str
    sha256: str
    size: int
    mtime: float
    added: str
    updated: str
    documents: int
    chunks: int
    embedded: int

    @property
    def status(self) -> str:
        """ "indexed" once every chunk has its vector; until then keyword search finds it already."""
        waiting = self.chunks - self.embedded
        return "indexed" if waiting <= 0 else f"waiting ({waiting} of {self.chunks} chunks await vectors)"


@dataclass(frozen=True)
class Listed:
    """One row of a documents listing: an indexed file, a file waiting to be read, or one that failed."""

    path: str
    status: str  # "indexed", "waiting", "waiting (n of m chunks await vectors)" or "failed: <reason>"
    kind: str = ""
    chunks: int = 0
    embedded: int = 0
    id: int | None = None

    @property
    def state(self) -> str:
        """The status's first word: indexed, waiting or failed."""
        return self.status.split(" ", 1)[0].rstrip(":")


# Off by the numbers: on sqlite-docs the title lifted vectors alone from 0.762 to 0.833 recall@5 and fused
# MRR from 0.686 to 0.715, but fused recall@5 fell from 0.881 to 0.857 (one question of 42).
# bench/retrieval.py --title-on measures it.
EMBED_TITLES = False


def context(title: str, heading: str) -> str:
    """The line the embedder reads before a chunk: title > heading path (the title once, if they overlap)."""
    if not EMBED_TITLES or not title or heading.startswith(title):
        return heading
    return f"{title} > {heading}" if heading else title


def live_waiting(value: Any) -> dict[str, list[str]]:
    """The waiting lists of watchers still running: an owner is "<pid>-<n>", and a killed process's list is
    dropped rather than shown as "waiting" forever (as is a plain list, the format before lists had owners)."""
    if not isinstance(value, dict):
        return {}
    return {owner: paths for owner, paths in value.items() if psutil.pid_exists(int(owner.split("-", 1)[0]))}


class Documents:
    """Table access for documents; every write is one transaction."""

    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    def file_hash(self, path: str) -> str | None:
        row = self._db().execute("SELECT sha256 FROM doc_files WHERE path = ?", [path]).fetchone()
        return None if row is None else row[0]

    def file_stat(self, path: str) -> tuple[int, float] | None:
        """(size, mtime) recorded when the file was last indexed."""
        row = self._db().execute("SELECT size, mtime FROM doc_files WHERE path = ?", [path]).fetchone()
        return None if row is None else (int(row[0]), float(row[1]))

    def replace_file(
        self, path: str, kind: str, sha256: str, size: int, mtime: float, docs: Sequence[tuple[ParsedDoc, list[Chunk]]]
    ) -> tuple[bool, int]:
        """Insert or replace one file with all its documents and chunks, atomically.

        Returns (was_update, number of chunks written).
        """
        stamp = now()
        written = 0
        with self._db().atomic() as db:
            row = db.execute("SELECT id, added FROM doc_files WHERE path = ?", [path]).fetchone()
            if row is not None:
                db.execute("DELETE FROM doc_files WHERE id = ?", [row[0]])  # cascades to documents, chunks, vectors
            cur = db.execute(
                "INSERT INTO doc_files (path, kind, sha256, size, mtime, added, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [path, kind, sha256, size, mtime, row[1] if row else stamp, stamp],
            )
            file_id = cur.lastrowid
            for doc, chunks in docs:
                cur = db.execute(
                    "INSERT INTO documents (file_id, part, title, meta) VALUES (?, ?, ?, ?)",
                    [file_id, doc.part, doc.title, json.dumps(doc.meta, ensure_ascii=False) if doc.meta else None],
                )
                doc_id = cur.lastrowid
                db.conn.executemany(
                    """INSERT INTO doc_chunks (document_id, seq, text, heading, page, location)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    [(doc_id, c.seq, c.text, " > ".join(c.heading), c.page, c.location) for c in chunks],
                )
                written += len(chunks)
        return row is not None, written

    def forget(self, ref: str) -> list[str]:
        """Remove files by exact path, by id, or by unique file name / path suffix; returns removed paths."""
        matches = self.find(ref)
        if not matches:
            raise KnownError(f"no indexed document matches '{ref}' (see `hearth docs`)")
        if len(matches) > 1 and not ref.isdigit():
            names = ", ".join(m.path for m in matches[:5])
            raise KnownError(f"'{ref}' matches {len(matches)} documents ({names}): give the full path or the id")
        with self._db().atomic() as db:
            for m in matches:
                db.execute("DELETE FROM doc_files WHERE id = ?", [m.id])
        self.record_results({}, [m.path for m in matches])
        return [m.path for m in matches]

    def failures(self) -> dict[str, str]:
        """Files whose last attempt failed, with the reason, so listings never claim "fully indexed"."""
        return dict(Settings(self._db).get(FAILURES_KEY, {}))

    def waiting(self) -> list[str]:
        """The files any running watcher has queued and not yet indexed (one list per watcher process)."""
        return sorted({p for paths in live_waiting(Settings(self._db).get(WAITING_KEY, {})).values() for p in paths})

    def listing(self) -> list[Listed]:
        """Every file Hearth knows of with its status, so no listing can claim "indexed" for a file
        that is queued, being re-read after a change, or failed."""
        waiting = set(self.waiting())
        failed = self.failures()
        rows: dict[str, Listed] = {}
        for f in self.list():
            status = f"failed: {failed[f.path]}" if f.path in failed else "waiting" if f.path in waiting else f.status
            rows[f.path] = Listed(f.path, status, f.kind, f.chunks, f.embedded, f.id)
        for path in waiting - rows.keys():
            rows[path] = Listed(path, "waiting", kind_of(path))
        for path, reason in failed.items():
            rows.setdefault(path, Listed(path, f"failed: {reason}", kind_of(path)))
        return sorted(rows.values(), key=lambda r: r.path)

    def record_results(self, failed: dict[str, str], fine: Iterable[str]) -> None:
        """Remember this run's failures and forget those of files that now indexed (one small write)."""
        known = self.failures()
        before = dict(known)
        for path in fine:
            known.pop(path, None)
        known.update(failed)
        if known != before:
            Settings(self._db).set(FAILURES_KEY, known)

    def forget_missing(self) -> builtins.list[str]:
        """Forget indexed (and failed) files that no longer exist on disk; returns the indexed ones forgotten."""
        gone = [p for p in self.paths() if not Path(p).exists()]
        self.forget_paths(gone)
        self.record_results({}, [p for p in self.failures() if not Path(p).exists()])
        return gone

    def forget_paths(self, paths: Iterable[str]) -> int:
        n = 0
        with self._db().atomic() as db:
            for p in paths:
                n += db.execute("DELETE FROM doc_files WHERE path = ?", [p]).rowcount
        return n

    def find(self, ref: str) -> list[FileRecord]:
        files = self.list()
        if ref.isdigit():
            return [f for f in files if f.id == int(ref)]
        exact = [f for f in files if f.path == ref]
        if exact:
            return exact
        return [f for f in files if f.path.endswith("/" + ref.lstrip("/")) or f.path.rsplit("/", 1)[-1] == ref]

    def list(self) -> list[FileRecord]:
        rows = (
            self._db()
            .execute(
                """SELECT f.id, f.path, f.kind, f.sha256, f.size, f.mtime, f.added, f.updated,
                      (SELECT count(*) FROM documents d WHERE d.file_id = f.id),
                      (SELECT count(*) FROM documents d JOIN doc_chunks c ON c.document_id = d.id
                        WHERE d.file_id = f.id),
                      (SELECT count(*) FROM documents d JOIN doc_chunks c ON c.document_id = d.id
                        JOIN doc_vectors v ON v.chunk_id = c.id WHERE d.file_id = f.id)
               FROM doc_files f ORDER BY f.path"""
            )
            .fetchall()
        )
        return [FileRecord(*r) for r in rows]

    # Below `list` (the method) the builtin is spelled `builtins.list`: a bare `list[...]` would name the method.
    def chunk_texts(self) -> builtins.list[tuple[int, str]]:
        """(document_id, text) of every chunk, each document's chunks in reading order (training input)."""
        sql = "SELECT document_id, text FROM doc_chunks ORDER BY document_id, seq"
        return [(int(r[0]), str(r[1])) for r in self._db().execute(sql).fetchall()]

    def paths(self) -> builtins.list[str]:
        return [r[0] for r in self._db().execute("SELECT path FROM doc_files ORDER BY path").fetchall()]

    def counts(self) -> dict[str, int]:
        db = self._db()

        def one(sql: str) -> int:
            return int(db.execute(sql).fetchone()[0])

        return {
            "files": one("SELECT count(*) FROM doc_files"),
            "documents": one("SELECT count(*) FROM documents"),
            "chunks": one("SELECT count(*) FROM doc_chunks"),
            "embedded": one("SELECT count(*) FROM doc_vectors"),
        }

    # -- vectors ------------------------------------------------------------------------------------

    def unembedded(self, limit: int) -> builtins.list[tuple[int, str, str]]:
        """(chunk id, what the embedder reads, chunk text) of chunks still lacking a vector, oldest first.

        The embedder reads the heading path before the text (and the document's title with EMBED_TITLES: a
        section's text rarely names its page's topic, "2. Description" of the page titled "UPSERT").
        """
        rows = (
            self._db()
            .execute(
                """SELECT c.id, d.title, c.heading, c.text FROM doc_chunks c JOIN documents d ON d.id = c.document_id
               LEFT JOIN doc_vectors v ON v.chunk_id = c.id WHERE v.chunk_id IS NULL ORDER BY c.id LIMIT ?""",
                [limit],
            )
            .fetchall()
        )
        return [(cid, context(title, heading), text) for cid, title, heading, text in rows]

    def count_unembedded(self) -> int:
        sql = "SELECT count(*) FROM doc_chunks c LEFT JOIN doc_vectors v ON v.chunk_id = c.id WHERE v.chunk_id IS NULL"
        return int(self._db().execute(sql).fetchone()[0])

    def add_vectors(self, model: str, rows: Sequence[tuple[int, bytes]]) -> int:
        """Store vectors; chunks deleted meanwhile (file re-indexed) are skipped, not errors."""
        with self._db().atomic() as db:
            cur = db.conn.executemany(
                """INSERT OR REPLACE INTO doc_vectors (chunk_id, model, vector)
                   SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM doc_chunks WHERE id = ?)""",
                [(cid, model, blob, cid) for cid, blob in rows],
            )
        return cur.rowcount

    def vectors_generation(self) -> int:
        return int(self._db().execute("SELECT value FROM doc_state WHERE key = 'vectors'").fetchone()[0])

    def all_vectors(self, model: str) -> tuple[list[int], list[bytes]]:
        rows = self._db().execute("SELECT chunk_id, vector FROM doc_vectors WHERE model = ?", [model]).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunk id -> its text and citation fields (path, title, location, page, heading, document id)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = (
            self._db()
            .execute(
                f"""SELECT c.id, c.text, c.location, c.page, c.heading, d.id, d.title, d.part, f.path
                FROM doc_chunks c JOIN documents d ON d.id = c.document_id JOIN doc_files f ON f.id = d.file_id
                WHERE c.id IN ({marks})""",
                list(ids),
            )
            .fetchall()
        )
        keys = ("id", "text", "location", "page", "heading", "document_id", "title", "part", "path")
        return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}
