"""The local API's access log: which client reached which endpoint or tool, when, and how many passages left.

It exists so the user can see what left the store. It records no content: no prompt, no query, no passage
text, no token; only the client's name, the time, the endpoint (`POST /api/chat`) or MCP tool
(`mcp:search_documents`), and the number of document or chat passages returned. It lives in the encrypted
database (table `api_access`, migration m005) and keeps the newest `KEEP_ROWS` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from storage.timeutil import now

KEEP_ROWS = 10_000  # a year of a busy editor's requests is far more; older entries say nothing new
PRUNE_EVERY = 200  # inserts between prunes: a DELETE per request would double the cost of logging


@dataclass(frozen=True)
class Access:
    client: str
    at: str
    endpoint: str
    passages: int


class AccessLog:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    def record(self, client: str, endpoint: str, passages: int = 0) -> None:
        with self._db().atomic() as db:
            cur = db.execute(
                "INSERT INTO api_access (client, at, endpoint, passages) VALUES (?, ?, ?, ?)",
                [client, now(), endpoint, passages],
            )
            row_id = cur.lastrowid or 0  # set after every INSERT; typed Optional
            if row_id % PRUNE_EVERY == 0:
                db.execute("DELETE FROM api_access WHERE id <= ?", [row_id - KEEP_ROWS])

    def recent(self, limit: int = 50, client: str | None = None) -> list[Access]:
        """Newest first."""
        where, params = ("WHERE client = ?", [client]) if client is not None else ("", [])
        rows = (
            self._db()
            .execute(
                f"SELECT client, at, endpoint, passages FROM api_access {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
            .fetchall()
        )
        return [Access(*r) for r in rows]

    def last_use(self) -> dict[str, str]:
        """Client name -> time of its latest request."""
        rows = self._db().execute("SELECT client, max(at) FROM api_access GROUP BY client").fetchall()
        return {r[0]: r[1] for r in rows}
