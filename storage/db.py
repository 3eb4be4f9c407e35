"""The SQLCipher connection: open with a raw key, verify it, tune it, export encrypted copies.

A raw 256-bit key (`PRAGMA key = "x'…'"`) skips SQLCipher's PBKDF2, so opening costs nothing beyond the
keychain or Argon2 step in `storage.keys`. The key is checked right after opening: SQLCipher only reads
page 1 on the first statement, and a wrong key must never reach a write. sqlcipher3 has its own
exception classes (not stdlib sqlite3's), caught here and turned into `KnownError`s.

Pragmas and why:
- `journal_mode=WAL`: readers never block the writer; per-token commits are appends to the WAL.
- `synchronous=NORMAL`: in WAL mode a process crash (kill -9) loses nothing committed; only an OS crash or
  power loss can drop the last few commits. FULL would fsync on every streamed token.
- `temp_store=MEMORY`: sorts and temp indexes never touch disk (temp files are not all encrypted).
- `cipher_log_level=NONE`: SQLCipher otherwise prints HMAC failures to stderr on a wrong key.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlcipher3

from storage.errors import KnownError

SQLITE_HEADER = b"SQLite format 3\x00"


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
    conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {key_pragma(key)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
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
        conn.execute("PRAGMA busy_timeout = 5000")
    except sqlcipher3.Error as e:
        conn.close()
        raise KnownError(f"cannot open {path.name}: {_reason(e)}") from None
    return conn


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
