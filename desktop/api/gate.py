"""Who may call the API right now: the named clients' token hashes and scopes, and the access log.

The gate owns its own connection to the encrypted store on its own thread, so checking a token never
waits for a generation that holds the store, and never shares a connection across threads. It re-reads
the clients whenever the database changed since the last request (`PRAGMA data_version`, which moves on
any other connection's commit, another process's included), so `hearth clients revoke` or
`hearth api-token --rotate` takes effect on a running `hearth serve` at the next request, at the cost of
one pragma per request while nothing changes. If `hearth rekey` replaced the database file, the gate
reopens it (an open connection would keep reading the old file and miss later revocations).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from sqlite_utils import Database

from storage import clients as clients_mod
from storage import paths
from storage.access_log import AccessLog
from storage.clients import Client

if TYPE_CHECKING:
    import sqlcipher3

log = logging.getLogger(__name__)
T = TypeVar("T")


class ClientGate:
    def __init__(self, connect: Callable[[], sqlcipher3.Connection]) -> None:
        """`connect` opens the gate's own connection (`Store.connect_again`); called on the gate's thread."""
        self._connect = connect
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hearth-api-gate")
        self._db: Database | None = None
        self._version: int | None = None
        self._clients: dict[str, Client] = {}
        self._tokenless = False
        self._inode: int | None = None

    async def resolve(self, presented: str | None) -> Client | None:
        """The client a request comes from: its token's; for no token, the tokenless Ollama client when the
        user turned that on; else None."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._resolve, presented)

    def _resolve(self, presented: str | None) -> Client | None:
        self._refresh()
        if presented is None:
            return clients_mod.TOKENLESS if self._tokenless else None
        return clients_mod.find(self._clients, presented)

    def _database(self) -> Database:
        if self._db is None:
            self._db = Database(self._connect(), execute_plugins=False)
            self._inode = _inode()
        return self._db

    def _refresh(self) -> None:
        if self._db is not None and _inode() != self._inode:
            # `hearth rekey` replaced the file: this connection would keep reading the old one.
            self._db.conn.close()
            self._db, self._version = None, None
        db = self._database()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        rows = dict(
            db.execute(
                "SELECT key, value FROM settings WHERE key IN (?, ?)",
                [clients_mod.CLIENTS_SETTING, clients_mod.TOKENLESS_SETTING],
            ).fetchall()
        )
        self._clients = clients_mod.parse(rows.get(clients_mod.CLIENTS_SETTING))
        self._tokenless = rows.get(clients_mod.TOKENLESS_SETTING) == "true"
        self._version = version

    async def read(self, query: Callable[[Database], T]) -> T:
        """Run a small read on the gate's connection (e.g. which personal adapter is active)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, query, self._database())

    def record(self, client: str, endpoint: str, passages: int = 0) -> None:
        """Append to the access log without holding up the response (a failure is logged, by type only)."""

        def write() -> None:
            try:
                AccessLog(self._database).record(client, endpoint, passages)
            except Exception as exc:
                log.error("API access log write failed with %s", type(exc).__name__)

        try:
            self._executor.submit(write)
        except RuntimeError:  # closed: the server is gone, and so is the request
            log.warning("API access log entry dropped: the server was closing")

    def close(self) -> None:
        def close_connection() -> None:
            if self._db is not None:
                self._db.conn.close()
                self._db = None

        try:
            self._executor.submit(close_connection)
        except RuntimeError:  # closed already
            return
        self._executor.shutdown(wait=True)


def _inode() -> int | None:
    try:
        return paths.database().stat().st_ino
    except OSError:
        return None
