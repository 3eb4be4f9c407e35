"""Who may call the API right now: the named clients' token hashes and scopes, and the access log.

The gate reads through a `SideConnection` (desktop/engine/side_connection.py): its own connection to the
encrypted store on its own thread, so checking a token never waits behind the store executor's line, and
never shares a connection across threads. It re-reads
the clients whenever the database changed since the last request (`PRAGMA data_version`, which moves on
any other connection's commit, another process's included), so `hearth clients revoke` or
`hearth api-token --rotate` takes effect on a running `hearth serve` at the next request, at the cost of
one pragma per request while nothing changes. If `hearth rekey` replaced the database file, the gate
reopens it (an open connection would keep reading the old file and miss later revocations).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from desktop.engine.side_connection import SideConnection
from storage import clients as clients_mod
from storage import paths
from storage.access_log import AccessLog
from storage.clients import Client

if TYPE_CHECKING:
    import sqlcipher3
    from sqlite_utils import Database

log = logging.getLogger(__name__)
T = TypeVar("T")


class ClientGate:
    def __init__(self, connect: Callable[[], sqlcipher3.Connection]) -> None:
        """`connect` opens the gate's own connection (`Store.connect_again`); called on the gate's thread."""
        self._side = SideConnection("api-gate", connect)
        self._version: int | None = None
        self._clients: dict[str, Client] = {}
        self._tokenless = False
        self._inode: int | None = None

    async def resolve(self, presented: str | None) -> Client | None:
        """The client a request comes from: its token's; for no token, the tokenless Ollama client when the
        user turned that on; else None."""
        return await self._side.run(self._resolve, presented)

    def _resolve(self, presented: str | None) -> Client | None:
        self._refresh()
        if presented is None:
            return clients_mod.TOKENLESS if self._tokenless else None
        return clients_mod.find(self._clients, presented)

    def _database(self) -> Database:
        if not self._side.is_open:
            self._inode = _inode()
        return self._side.db()

    def _refresh(self) -> None:
        if self._side.is_open and _inode() != self._inode:
            self._side.reopen()  # `hearth rekey` replaced the file: this connection would keep reading the old one
            self._version = None
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
        return await self._side.run(lambda: query(self._database()))

    def record(self, client: str, endpoint: str, passages: int = 0) -> None:
        """Append to the access log without holding up the response (a failure is logged, by type only)."""

        def write() -> None:
            try:
                AccessLog(self._database).record(client, endpoint, passages)
            except Exception as exc:
                log.error("API access log write failed with %s", type(exc).__name__)

        if self._side.submit(write) is None:
            log.warning("API access log entry dropped: the server was closing")

    def close(self) -> None:
        self._side.close()


def _inode() -> int | None:
    try:
        return paths.database().stat().st_ino
    except OSError:
        return None
