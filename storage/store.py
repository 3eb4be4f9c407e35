"""The encrypted store: one object that unlocks the database and hands out chats, blobs and settings.

Open order: read the key file → get the key from its custody (keychain, or passphrase + Argon2id) →
open and verify the SQLCipher database → back up and migrate if the schema is behind. A missing key file
next to an existing database is an error, never a first run (that would orphan the user's data).

One thread at a time uses a Store (the GUI's storage worker owns it); the connection is opened with
`check_same_thread=False` so that worker need not be the thread that opened it. Other processes (CLI next
to the GUI) may open the same store; `rekey` refuses while any other holds it (an flock in `run_dir`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import sqlcipher3
from sqlite_utils import Database

from storage import blobs as blobs_mod
from storage import db as dbmod
from storage import keys, migrations, paths
from storage.access_log import AccessLog
from storage.blobs import Blobs
from storage.chats import Chats
from storage.documents import Documents
from storage.errors import KnownError
from storage.keys import Custody, KeyringCustody, PassphraseCustody, PassphraseSource
from storage.settings import Settings
from storage.timeutil import now

if TYPE_CHECKING:
    from storage.ingest import Summary
    from storage.search import Hit, Searcher

REKEY_SUFFIX = ".rekey"
KEEP_BACKUPS = 2  # migration backups kept: the one before the latest upgrade and the one before that


class Store:
    """Use `Store.open(...)`; attributes `db` (sqlite_utils.Database), `chats`, `blobs`, `settings`, `documents`,
    `access_log`, `custody`; `search()` and `ingest()` over the documents. Callers never build those over
    `store.db` themselves.
    """

    def __init__(self, conn: sqlcipher3.Connection, key: bytes, custody: Custody, lock: _Lock) -> None:
        self._conn = conn
        self._database = dbmod.StoreDatabase(conn, execute_plugins=False)
        self._key = key
        self._custody = custody
        self._lock = lock
        self.chats = Chats(lambda: self.db)
        self.blobs = Blobs(lambda: self.db)
        self.settings = Settings(lambda: self.db)
        self.documents = Documents(lambda: self.db)
        self.access_log = AccessLog(lambda: self.db)
        self._searcher: Searcher | None = None  # built on first search: it holds the vector matrix cache

    # -- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, passphrase: PassphraseSource = None) -> Store:
        """Unlock (or create) the store under `paths.home()`.

        `passphrase`: a string; or a callable taking `first_run` (True: ask the user to choose one) and
        returning it; or None for `HEARTH_PASSPHRASE`. Only asked when the key is not in the keychain.
        """
        db_path, key_path = paths.database(), paths.key_file()
        lock = _Lock.shared(paths.run_dir() / "store.lock")
        try:
            conn, key, custody = cls._unlock(db_path, key_path, passphrase)
            store = cls(conn, key, custody, lock)
        except BaseException:
            lock.release()
            raise
        try:
            store._upgrade()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _unlock(
        cls, db_path: Path, key_path: Path, passphrase: PassphraseSource
    ) -> tuple[sqlcipher3.Connection, bytes, Custody]:
        record = keys.read_record(key_path)
        db_exists = db_path.exists() and db_path.stat().st_size > 0
        pending: bytes | None = None
        custody: Custody
        if record is None:
            if db_exists:
                dbmod.inspect_file(db_path)
                raise KnownError(
                    f"{db_path.name} exists but its key file {key_path.name} is missing: restore {key_path.name} "
                    f"from a backup (Hearth will not make a new key for an existing database)"
                )
            key = secrets.token_bytes(keys.KEY_BYTES)
            custody = KeyringCustody.create(key_path, key) or PassphraseCustody.create(
                key_path, key, keys.resolve_passphrase(passphrase, first_run=True)
            )
        elif record["custody"] == "keyring":
            custody, key, pending = KeyringCustody.load(key_path, record)
        else:
            secret = keys.resolve_passphrase(passphrase, first_run=False)
            custody, key, pending = PassphraseCustody.load(key_path, record, secret)
        db_path.with_name(db_path.name + REKEY_SUFFIX).unlink(missing_ok=True)  # an interrupted rekey's copy
        try:
            conn = dbmod.connect(db_path, key)
        except dbmod.KeyDoesNotOpen:
            if pending is None:
                raise KnownError(_mismatch(custody, db_path, key_path)) from None
            try:
                conn = dbmod.connect(db_path, pending)  # a rekey got as far as replacing the file
            except dbmod.KeyDoesNotOpen:
                raise KnownError(_mismatch(custody, db_path, key_path)) from None
            custody.promote_pending(pending)
            return conn, pending, custody
        if pending is not None:
            custody.discard_pending()  # a rekey stopped before replacing the file
        return conn, key, custody

    def _upgrade(self) -> None:
        migrations.migrate(self.db, before=self._backup)
        self.blobs.remove_orphans()

    def _backup(self, version: int) -> Path:
        """An encrypted copy (same key) taken before migrating from `version`; the newest KEEP_BACKUPS stay.

        Written under a temporary name and renamed when complete, so a crash never leaves a partial copy
        that looks like a backup.
        """
        stamp = now().replace(":", "").replace("-", "").replace(".", "")
        dest = paths.backups() / f"hearth-schema{version}-{stamp}.db"
        partial = dest.with_name(dest.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            dbmod.export(self._conn, partial, self._key)
            os.replace(partial, dest)
            keys.fsync_dir(dest.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        for old in backups()[:-KEEP_BACKUPS]:
            old.unlink(missing_ok=True)
        return dest

    # -- public API ---------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._database is None:
            raise KnownError("the store is closed")
        return self._database

    @property
    def custody(self) -> str:
        """ "keyring" or "passphrase"."""
        return self._custody.kind

    @property
    def path(self) -> Path:
        return paths.database()

    def connect_again(self) -> sqlcipher3.Connection:
        """A second connection to this database, for a thread that needs its own (the local API's token
        checks and access log). Costs no key derivation: it opens with the raw key already unlocked."""
        if self._database is None:
            raise KnownError("the store is closed")
        return dbmod.connect(paths.database(), self._key)

    def close(self) -> None:
        if self._database is not None:
            self._conn.close()
            self._database = None  # type: ignore[assignment]
            self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def search(self, query: str, k: int = 5, per_document: int = 1) -> list[Hit]:
        """Hybrid search over the ingested documents (storage.search), one cached searcher per open store."""
        if self._searcher is None:
            from storage.search import Searcher

            self._searcher = Searcher(lambda: self.db)
        return self._searcher.search(query, k=k, per_document=per_document)

    def ingest(self, paths: Any, **options: Any) -> Summary:
        """Index (and embed) files and folders: `storage.ingest.Ingester.add` with its options."""
        from storage.ingest import Ingester

        return Ingester(lambda: self.db).add(paths, **options)

    def change_passphrase(self, new_passphrase: str) -> None:
        """Re-wrap the same database key under a new passphrase (the database itself is not touched)."""
        self._custody.change_passphrase(self._key, new_passphrase)

    def rekey(self) -> list[Path]:
        """Rotate the database key itself: an encrypted copy under a new key replaces the file atomically.

        Returns the migration backups it deleted: they were encrypted under the old key, which must stop
        opening anything (the caller tells the user).

        Crash safety: the new key is first saved as *pending* in custody; the copy is written and fsynced
        beside the database, then renamed over it; then the pending key becomes current. `open` tries the
        current key, then the pending one, so a crash at any step leaves an openable store. A new blob
        master generation is added inside the copy (see storage.blobs).
        """
        db_path = paths.database()
        tmp = db_path.with_name(db_path.name + REKEY_SUFFIX)
        self._lock.exclusive()
        try:
            tmp.unlink(missing_ok=True)
            new_key = secrets.token_bytes(keys.KEY_BYTES)
            self._custody.set_pending(new_key)
            try:
                dbmod.export(self._conn, tmp, new_key, [blobs_mod.new_generation_sql("target")])
            except BaseException:
                tmp.unlink(missing_ok=True)
                self._custody.discard_pending()
                raise
            dbmod.checkpoint_and_close(self._conn)
            self._database = None  # type: ignore[assignment]
            for suffix in ("-wal", "-shm"):  # emptied by the checkpoint; nobody else has the file open
                db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
            os.replace(tmp, db_path)
            keys.fsync_dir(db_path.parent)
            self._custody.promote_pending(new_key)
            self._conn = dbmod.connect(db_path, new_key)
            self._database = dbmod.StoreDatabase(self._conn, execute_plugins=False)
            self._key = new_key
        finally:
            self._lock.shared_again()
        removed = backups()
        for old in removed:
            old.unlink(missing_ok=True)
        return removed

    def integrity_check(self) -> list[str]:
        """SQLite's page-level check plus the FTS index check; `["ok"]` when healthy."""
        rows = [row[0] for row in self.db.execute("PRAGMA integrity_check").fetchall()]
        try:
            self.db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        except sqlcipher3.DatabaseError as e:
            rows = [*(r for r in rows if r != "ok"), f"messages_fts: {e}"]
        return rows


def backups() -> list[Path]:
    """The migration backups in `paths.backups()`, oldest first."""
    return sorted(paths.backups().glob("hearth-schema*.db"), key=lambda p: p.stat().st_mtime)


def _mismatch(custody: Custody, db_path: Path, key_path: Path) -> str:
    where = "in the OS keychain" if custody.kind == "keyring" else f"in {key_path.name}"
    return (
        f"the database key {where} does not open {db_path.name}: it was made with another key or is not a "
        f"Hearth database (nothing was changed)"
    )


class _Lock:
    """An flock on run_dir/store.lock: shared while a Store is open, exclusive for rekey (POSIX only)."""

    def __init__(self, handle: IO[bytes] | None) -> None:
        self._handle = handle

    @classmethod
    def shared(cls, path: Path) -> _Lock:
        try:
            import fcntl
        except ImportError:  # Windows: replacing an open file fails there anyway, which protects rekey
            return cls(None)
        handle = open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "rb+")  # noqa: SIM115 (held while open)
        fcntl.flock(handle, fcntl.LOCK_SH)
        return cls(handle)

    def exclusive(self) -> None:
        if self._handle is None:
            return
        import fcntl

        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._handle, fcntl.LOCK_SH)
            raise KnownError("another Hearth process has the store open: close it, then rekey") from None

    def shared_again(self) -> None:
        if self._handle is not None:
            import fcntl

            fcntl.flock(self._handle, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
