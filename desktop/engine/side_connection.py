"""A second connection to the encrypted store, owned by an executor of its own.

The store executor (`desktop.engine.executor`) runs the window's and the API's store work in order, and an
ingest or a reply's saves can sit in that line. Two readers must not wait there: the local API's client
gate (a token check before every request, `desktop.api.gate`) and the MCP tools' library
(`desktop.api.knowledge`). Each gets a `SideConnection`: its own SQLCipher connection (`Store.connect_again`,
no key derivation), opened lazily and only ever used on its own single thread, so no connection crosses
threads and neither reader races the store's owner. This is the one way such a reader opens the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from desktop.engine.executor import Executor, ExecutorClosed

if TYPE_CHECKING:
    import concurrent.futures

    import sqlcipher3

T = TypeVar("T")
log = logging.getLogger(__name__)


class SideConnection:
    def __init__(self, name: str, connect: Callable[[], sqlcipher3.Connection]) -> None:
        """`connect` opens the connection (`Store.connect_again`); it is called on this object's thread."""
        self.executor = Executor(name)
        self._connect = connect
        self._db: Database | None = None

    def db(self) -> Database:
        """The connection, opened on first use (on this object's thread only)."""
        if self._db is None:
            self._db = Database(self._connect(), execute_plugins=False)
        return self._db

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def reopen(self) -> None:
        """Drop the connection (on this object's thread); the next `db()` opens a fresh one (after a rekey
        replaced the database file, an open connection would keep reading the old one)."""
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await fn(*args) run on this object's thread (from the API's event loop)."""
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any] | None:
        """Queue fn(*args) without waiting; None once closed (the server is gone, and so is the request)."""
        try:
            return self.executor.submit(fn, *args)
        except ExecutorClosed:
            return None

    def close(self) -> None:
        """Let queued work finish (access-log writes), close the connection on its thread, end the thread."""
        try:
            self.executor.call(self.reopen)  # waits behind what is queued: the line runs in order
        except ExecutorClosed:
            return
        self.executor.close()
