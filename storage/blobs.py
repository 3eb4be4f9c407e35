"""Large binary artefacts (LoRA adapters, training checkpoints) as AEAD-encrypted files under `paths.blobs()`.

Files rather than database rows keep the database small and its WAL free of 100 MB writes. Each file:

    header = MAGIC | generation (u32) | salt (16) | chunk size (u32)
    chunk i = AES-256-GCM(file key, nonce = i (11 bytes) | last-flag (1 byte), chunk, aad = header | file id)

The file key is HKDF-SHA256(master[generation], salt): a fresh random salt per file makes every file key
unique, so counter nonces are safe; the last-flag catches truncation at a chunk boundary, and the file id in
the AAD catches files swapped on disk. File names are random ids; the user-facing names live only in the
encrypted database (`blobs` table).

Why the master keys live in the database and not derived from the database key: `rekey` then needs no
rewrite of gigabytes of blob files, yet stays meaningful, because it also adds a new master generation
(inside the rekeyed copy) that every later blob uses. Old blobs stay under the old generation, whose key
is now only readable with the new database key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlite_utils import Database

from storage import paths
from storage.errors import KnownError, disk_full
from storage.keys import fsync_dir
from storage.timeutil import now

MAGIC = b"HRTHBLB1"
CHUNK = 1 << 20
_HEADER = struct.Struct(">8sI16sI")
_TAG = 16


class Blobs:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    # -- public API ---------------------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        """Store (or replace) `name`; durable once this returns."""
        import io

        self.put_stream(name, io.BytesIO(data))

    def put_file(self, name: str, source: Path) -> None:
        """Encrypt a file that is already somewhere else (the caller deletes its plaintext)."""
        with open(source, "rb") as f:
            self.put_stream(name, f)

    def put_stream(self, name: str, source: BinaryIO) -> None:
        _check_name(name)
        generation, master = self._current_master()
        file_id = secrets.token_hex(16)
        directory = paths.blobs()
        tmp = directory / f".{file_id}.tmp"
        size = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _encrypt(source, out, master, generation, file_id)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, directory / file_id)
            fsync_dir(directory)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            full = disk_full(e)
            if full is not None:  # the old version of `name`, if any, is untouched
                raise full from None
            raise
        stamp = now()
        old = None
        try:
            with self._db().atomic() as db:
                old = self._row(name)  # inside the transaction: another process may replace it meanwhile
                db.execute(
                    """INSERT INTO blobs (name, file, generation, size, created, updated) VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(name) DO UPDATE SET file = excluded.file, generation = excluded.generation,
                       size = excluded.size, updated = excluded.updated""",
                    [name, file_id, generation, size, stamp, stamp],
                )
        except BaseException:
            (directory / file_id).unlink(missing_ok=True)
            raise
        if old is not None:
            (directory / old["file"]).unlink(missing_ok=True)

    def get(self, name: str) -> bytes:
        import io

        out = io.BytesIO()
        self.read_into(name, out)
        return out.getvalue()

    def read_into(self, name: str, out: BinaryIO) -> None:
        row = self._row(name)
        if row is None:
            raise KnownError(f"there is no stored artefact named {name!r}")
        master = self._master(row["generation"])
        path = paths.blobs() / row["file"]
        try:
            with path.open("rb") as f:
                _decrypt(f, out, master, row["file"])
        except FileNotFoundError:
            raise KnownError(f"the encrypted file of artefact {name!r} is missing from {path.parent}") from None

    @contextlib.contextmanager
    def plaintext_path(self, name: str) -> Iterator[Path]:
        """The decrypted artefact at a path valid inside the `with` block only (see module `plaintext_path`)."""
        with plaintext_path(self.get(name)) as path:
            yield path

    def exists(self, name: str) -> bool:
        return self._row(name) is not None

    def list(self) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT name, size, created, updated FROM blobs ORDER BY name").fetchall()
        return [dict(zip(("name", "size", "created", "updated"), row, strict=True)) for row in rows]

    def delete(self, name: str) -> None:
        row = self._row(name)
        if row is None:
            return
        with self._db().atomic() as db:
            db.execute("DELETE FROM blobs WHERE name = ?", [name])
        (paths.blobs() / row["file"]).unlink(missing_ok=True)

    def remove_orphans(self, min_age_s: float = 3600) -> int:
        """Delete files no row points to (a crash between writing a file and recording it).

        Only files older than `min_age_s`: another process may be between writing a file and its row.
        """
        import time

        known = {row[0] for row in self._db().execute("SELECT file FROM blobs").fetchall()}
        cutoff = time.time() - min_age_s
        removed = 0
        for path in paths.blobs().iterdir():
            if path.is_file() and path.name not in known and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    # -- keys ---------------------------------------------------------------------------------------

    def _row(self, name: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT file, generation FROM blobs WHERE name = ?", [name]).fetchone()
        return None if row is None else {"file": row[0], "generation": row[1]}

    def _current_master(self) -> tuple[int, bytes]:
        row = self._db().execute("SELECT generation, key FROM blob_keys ORDER BY generation DESC LIMIT 1").fetchone()
        return int(row[0]), bytes(row[1])

    def _master(self, generation: int) -> bytes:
        row = self._db().execute("SELECT key FROM blob_keys WHERE generation = ?", [generation]).fetchone()
        if row is None:
            raise KnownError("the key of a stored artefact is missing from the database")
        return bytes(row[0])


def new_generation_sql(schema: str = "main") -> tuple[str, tuple[Any, ...]]:
    """SQL adding a fresh master key generation (used on the rekeyed copy, see `Store.rekey`)."""
    return (
        f"INSERT INTO {schema}.blob_keys (generation, key, created) "
        f"SELECT coalesce(max(generation), 0) + 1, ?, ? FROM {schema}.blob_keys",
        (secrets.token_bytes(32), now()),
    )


def _check_name(name: str) -> None:
    if not name or len(name) > 255:
        raise ValueError("a blob name must be 1-255 characters")


def _file_key(master: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"hearth blob file v1").derive(master)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _encrypt(source: BinaryIO, out: BinaryIO, master: bytes, generation: int, file_id: str) -> int:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt = secrets.token_bytes(16)
    header = _HEADER.pack(MAGIC, generation, salt, CHUNK)
    aead = AESGCM(_file_key(master, salt))
    aad = header + file_id.encode()
    out.write(header)
    size, index = 0, 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if len(chunk) == CHUNK else b""
        last = not following
        out.write(aead.encrypt(_nonce(index, last), chunk, aad))
        size += len(chunk)
        if last:
            return size
        chunk, index = following, index + 1


def _decrypt(source: BinaryIO, out: BinaryIO, master: bytes, file_id: str) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    damaged = KnownError("a stored artefact is damaged or was tampered with")
    header = source.read(_HEADER.size)
    if len(header) != _HEADER.size:
        raise damaged
    magic, _generation, salt, chunk_size = _HEADER.unpack(header)
    if magic != MAGIC or chunk_size <= 0:
        raise damaged
    aead = AESGCM(_file_key(master, salt))
    aad = header + file_id.encode()
    index = 0
    sealed = source.read(chunk_size + _TAG)
    while True:
        following = source.read(chunk_size + _TAG)
        try:
            out.write(aead.decrypt(_nonce(index, not following), sealed, aad))
        except InvalidTag:
            raise damaged from None
        if not following:
            return
        sealed, index = following, index + 1


@contextlib.contextmanager
def plaintext_path(data: bytes) -> Iterator[Path]:
    """A filesystem path holding `data` for the `with` block, leaving no plaintext on disk afterwards.

    Linux: an anonymous memfd (RAM only, never on a filesystem), reachable as /proc/self/fd/N by this
    process (a child process needs the fd passed). Elsewhere: a 0600 temporary file, deleted on exit;
    the plaintext does touch the disk for that window, the best a portable path can do.
    """
    if sys.platform.startswith("linux") and hasattr(os, "memfd_create"):
        fd = os.memfd_create("hearth-blob", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="hearth-")  # mkstemp creates 0600
    try:
        _write_all(fd, data)
        os.close(fd)
        fd = -1
        yield Path(name)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
