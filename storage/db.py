"""The SQLCipher connection: open with a raw key, verify it, tune it, export encrypted copies.

A raw 256-bit key (`PRAGMA key = "x'…'"`) skips SQLCipher's PBKDF2, so opening costs nothing beyond the
keychain or Argon2 step in `storage.keys`. The key is checked right after opening: SQLCipher only reads
page 1 on the first statement, and a wrong key must never reach a write. sqlcipher3 has its own
exception classes (not stdlib sqlite3's), caught here and turned into `KnownError`s.

Between processes (the window, `hearth add`, the trainer, `hearth serve` on one store): every write
transaction starts with `BEGIN IMMEDIATE` (`StoreDatabase.atomic`), which takes the write lock up front and
waits up to `BUSY_TIMEOUT_MS` for it. A deferred `BEGIN` that reads and then writes cannot wait: if another
process committed since its read, SQLite fails it at once with "database is locked" (SQLITE_BUSY_SNAPSHOT),
whatever the busy timeout. The timeout is set before the key check, so a store busy with another process's
write at that moment waits instead of being reported as a wrong key.

Pragmas and why:
- `journal_mode=WAL`: readers never block the writer; per-token commits are appends to the WAL.
- `synchronous=NORMAL`: in WAL mode a process crash (kill -9) loses nothing committed; only an OS crash or
  power loss can drop the last few commits. FULL would fsync on every streamed token.
- `temp_store=MEMORY`: sorts and temp indexes never touch disk (temp files are not all encrypted).
- `cipher_log_level=NONE`: SQLCipher otherwise prints HMAC failures to stderr on a wrong key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import sqlcipher3
from sqlite_utils import Database

from storage.errors import KnownError, disk_full

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000  # a long ingest transaction of another process can hold the write lock this long


class KeyDoesNotOpen(KnownError):
    """The key did not decrypt page 1: another key's database, or not a database. The Store rewords it."""


def key_pragma(key: bytes) -> str:
    return f"\"x'{key.hex()}'\""


def inspect_file(path: Path) -> None:
    """Refuse files that plainly are not a Hearth database before any key is tried on them."""
    with path.open("rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if head == SQLITE_HEADER:
        raise KnownError(f"{path.name} is an unencrypted SQLite database, not a Hearth store: move it away")
    if size % 512:  # SQLCipher files are whole pages (4096 bytes by default)
        raise KnownError(f"{path.name} is not a Hearth database (it is not made of database pages): move it away")


def connect(path: Path, key: bytes) -> sqlcipher3.Connection:
    """Open (creating 0600 if absent) and verify the key; KeyDoesNotOpen leaves the file untouched."""
    if not path.exists():
        # SQLite gives -wal and -shm the main file's mode, so creating it 0600 covers all three.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    elif path.stat().st_size:
        inspect_file(path)
    # Autocommit (isolation_level=None): the driver never opens a transaction behind our back. In its default
    # mode any stray INSERT/DELETE (even into a temp table) silently began one, every later `atomic()` became
    # a savepoint inside it, and closing the connection rolled all of it back: chats were lost.
    # `timeout` is SQLite's busy timeout, set at open: before the key check's first read of the file.
    conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {key_pragma(key)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.OperationalError as e:
        conn.close()
        if is_busy(e):
            raise KnownError(f"{path.name} is busy in another Hearth process; try again in a moment") from None
        raise KeyDoesNotOpen(f"the key does not open {path.name}") from None
    except sqlcipher3.DatabaseError:
        conn.close()
        raise KeyDoesNotOpen(f"the key does not open {path.name}") from None
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise KnownError(f"{path.name} cannot use write-ahead logging here (journal mode {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlcipher3.Error as e:
        conn.close()
        raise disk_full(e) or KnownError(f"cannot open {path.name}: {_reason(e)}") from None
    return conn


def is_busy(error: BaseException) -> bool:
    return isinstance(error, sqlcipher3.OperationalError) and ("locked" in str(error) or "busy" in str(error))


class StoreDatabase(Database):
    """sqlite-utils' Database whose transactions begin IMMEDIATE (see the module docstring).

    sqlite-utils runs every table write (`insert`, `upsert`, `delete_where`, ...) through `atomic()`, so this
    one override covers them all. Nested blocks stay savepoints inside the outer transaction. A full disk
    (SQLITE_FULL) rolls the transaction back and becomes `DiskFull`.
    """

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:
            savepoint = f"nested_{secrets.token_hex(8)}"
            self.conn.execute(f"SAVEPOINT {savepoint}")
            try:
                yield self
            except BaseException:
                if self.conn.in_transaction:  # an error may have rolled the whole transaction back already
                    self.conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlcipher3.OperationalError as e:
            if is_busy(e):
                raise KnownError(
                    f"another Hearth process kept the store busy for {BUSY_TIMEOUT_MS // 1000} s; nothing was "
                    f"changed, try again"
                ) from None
            raise
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException as e:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            full = disk_full(e)
            if full is not None and full is not e:
                raise full from None
            raise


def export(conn: sqlcipher3.Connection, dest: Path, key: bytes, extra_sql: list[tuple[str, tuple]] = ()) -> None:
    """Write an encrypted copy of the open database to `dest` (absent), keyed with `key`, and fsync it.

    `sqlcipher_export` rather than `VACUUM INTO` (reported to produce partly plaintext copies) or the
    backup API (which copies pages and so needs the same key). `extra_sql` runs against schema `target`
    before it is detached (e.g. adding a blob key generation to a rekeyed copy). user_version is not copied
    by sqlcipher_export, so it is set here.
    """
    if dest.exists():
        raise FileExistsError(dest)
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    version = conn.execute("PRAGMA main.user_version").fetchone()[0]
    if conn.in_transaction:
        conn.commit()
    conn.execute(f"ATTACH DATABASE ? AS target KEY {key_pragma(key)}", (str(dest),))
    try:
        conn.execute("SELECT sqlcipher_export('target')").fetchall()
        conn.execute(f"PRAGMA target.user_version = {int(version)}")
        for sql, params in extra_sql:
            conn.execute(sql, params)
        if conn.in_transaction:
            conn.commit()
    finally:
        conn.execute("DETACH DATABASE target")
    with dest.open("rb+") as f:
        os.fsync(f.fileno())


def checkpoint_and_close(conn: sqlcipher3.Connection) -> None:
    """Fold the WAL into the main file, then close (SQLite removes -wal/-shm on the last close)."""
    try:
        if conn.in_transaction:
            conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def _reason(error: Exception) -> str:
    text = str(error)
    if "disk is full" in text or "disk I/O" in text or "readonly" in text or "locked" in text:
        return text
    return "database error"
