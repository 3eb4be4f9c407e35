"""Conversations and messages, saved as they happen, with full-text search over message text.

Rows come back as plain dicts (JSON-ready for the API and `--json`):
- conversation: id, title, system_prompt, created, updated (+ message_count in `list`)
- message: id, conversation_id, role, content, created, updated, status, meta (dict or None)

Streaming: `add_message(..., status="streaming")` when generation starts, then `update_message` (whole
text) or `append_to_message` (a delta) per token: each is one small UPDATE committed to the WAL, so a crash
loses at most the token in flight; `update_message(..., status="complete")` at the end. Updates do not
re-index (see migrations.m002); `search` first indexes any rows changed since the last search.
"""

from __future__ import annotations

import builtins  # `Chats.list` shadows the builtin in annotations inside the class
import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from storage.errors import KnownError
from storage.timeutil import now

ROLES = ("system", "user", "assistant", "tool")
STATUSES = ("complete", "streaming", "interrupted", "error")
_MESSAGE_COLUMNS = "id, conversation_id, role, content, created, updated, status, meta"


class Chats:
    def __init__(self, db: Callable[[], Database]) -> None:
        # A getter, not the Database: Store.rekey swaps the connection underneath.
        self._db = db

    # -- conversations ------------------------------------------------------------------------------

    def create(self, title: str = "", system_prompt: str | None = None) -> int:
        stamp = now()
        with self._db().atomic() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, system_prompt, created, updated) VALUES (?, ?, ?, ?)",
                [title, system_prompt, stamp, stamp],
            )
            return int(cursor.lastrowid)

    def get(self, conversation_id: int) -> dict[str, Any]:
        row = (
            self._db()
            .execute(
                "SELECT id, title, system_prompt, created, updated FROM conversations WHERE id = ?", [conversation_id]
            )
            .fetchone()
        )
        if row is None:
            raise KnownError(f"there is no conversation {conversation_id}")
        return dict(zip(("id", "title", "system_prompt", "created", "updated"), row, strict=True))

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest first, with message counts."""
        sql = """SELECT c.id, c.title, c.system_prompt, c.created, c.updated,
                        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
                 FROM conversations c ORDER BY c.updated DESC, c.id DESC"""
        params: builtins.list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        keys = ("id", "title", "system_prompt", "created", "updated", "message_count")
        return [dict(zip(keys, row, strict=True)) for row in self._db().execute(sql, params).fetchall()]

    def rename(self, conversation_id: int, title: str) -> None:
        self._update_conversation(conversation_id, "title = ?", [title])

    def set_system_prompt(self, conversation_id: int, system_prompt: str | None) -> None:
        self._update_conversation(conversation_id, "system_prompt = ?", [system_prompt])

    def delete(self, conversation_id: int) -> None:
        """Deletes its messages too (ON DELETE CASCADE; the FTS rows go with them via trigger)."""
        with self._db().atomic() as db:
            if db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id]).rowcount == 0:
                raise KnownError(f"there is no conversation {conversation_id}")

    def _update_conversation(self, conversation_id: int, assignment: str, params: builtins.list[Any]) -> None:
        with self._db().atomic() as db:
            cursor = db.execute(
                f"UPDATE conversations SET {assignment}, updated = ? WHERE id = ?", [*params, now(), conversation_id]
            )
            if cursor.rowcount == 0:
                raise KnownError(f"there is no conversation {conversation_id}")

    # -- messages -----------------------------------------------------------------------------------

    def messages(self, conversation_id: int) -> builtins.list[dict[str, Any]]:
        rows = (
            self._db()
            .execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id]
            )
            .fetchall()
        )
        return [_message(row) for row in rows]

    def message(self, message_id: int) -> dict[str, Any]:
        row = self._db().execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", [message_id]).fetchone()
        if row is None:
            raise KnownError(f"there is no message {message_id}")
        return _message(row)

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        status: str = "complete",
        meta: dict[str, Any] | None = None,
    ) -> int:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        _check_status(status)
        stamp = now()
        with self._db().atomic() as db:
            cursor = db.execute(
                """INSERT INTO messages (conversation_id, role, content, created, updated, status, meta)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [conversation_id, role, content, stamp, stamp, status, _meta_json(meta)],
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", [stamp, conversation_id])
            return int(cursor.lastrowid)

    def update_message(
        self, message_id: int, content: str, status: str | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        """Replace the text (one UPDATE + commit: cheap enough per streamed token)."""
        sets, params = ["content = ?", "updated = ?"], [content, now()]
        if status is not None:
            _check_status(status)
            sets.append("status = ?")
            params.append(status)
        if meta is not None:
            sets.append("meta = ?")
            params.append(_meta_json(meta))
        self._update_message(message_id, ", ".join(sets), params)

    def append_to_message(self, message_id: int, delta: str) -> None:
        """Append a streamed piece without resending the whole text."""
        self._update_message(message_id, "content = content || ?, updated = ?", [delta, now()])

    def finish_message(self, message_id: int, status: str = "complete") -> None:
        _check_status(status)
        stamp = now()
        with self._db().atomic() as db:
            self._update_message(message_id, "status = ?, updated = ?", [status, stamp])
            db.execute(
                "UPDATE conversations SET updated = ? WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)",
                [stamp, message_id],
            )

    def delete_message(self, message_id: int) -> None:
        with self._db().atomic() as db:
            db.execute("DELETE FROM messages WHERE id = ?", [message_id])

    def _update_message(self, message_id: int, assignments: str, params: builtins.list[Any]) -> None:
        with self._db().atomic() as db:
            cursor = db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", [*params, message_id])
            if cursor.rowcount == 0:
                raise KnownError(f"there is no message {message_id}")

    # -- search -------------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50, marks: tuple[str, str] = ("[", "]")) -> builtins.list[dict[str, Any]]:
        """Messages containing `text` (case- and accent-insensitive substring), best match first.

        Each hit: conversation_id, title, message_id, role, snippet, updated. The whole query is one FTS5
        phrase, so operators typed by the user are just text.
        """
        text = text.strip()
        if not text:
            return []
        self.index_pending()
        keys = ("conversation_id", "title", "message_id", "role", "snippet", "updated")
        db = self._db()
        if len(text) >= 3:
            phrase = '"' + text.replace('"', '""') + '"'
            rows = db.execute(
                """SELECT m.conversation_id, c.title, m.id, m.role,
                          snippet(messages_fts, 0, ?, ?, '…', 16), c.updated
                   FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
                   JOIN conversations c ON c.id = m.conversation_id
                   WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?""",
                [marks[0], marks[1], phrase, limit],
            ).fetchall()
        else:  # trigram cannot match under 3 characters; the table scan is fine at chat scale
            rows = db.execute(
                """SELECT m.conversation_id, c.title, m.id, m.role, substr(m.content, 1, 120), c.updated
                   FROM messages m JOIN conversations c ON c.id = m.conversation_id
                   WHERE m.content LIKE ? ESCAPE '\\' ORDER BY m.id DESC LIMIT ?""",
                ["%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit],
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def index_pending(self) -> int:
        """Index messages written or changed since the last search; returns how many."""
        with self._db().atomic() as db:
            cursor = db.execute(
                "INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages WHERE indexed = 0"
            )
            count = cursor.rowcount
            db.execute("UPDATE messages SET indexed = 1 WHERE indexed = 0")
        return max(count, 0)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")


def _meta_json(meta: dict[str, Any] | None) -> str | None:
    return None if meta is None else json.dumps(meta, ensure_ascii=False)


def _message(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "conversation_id", "role", "content", "created", "updated", "status", "meta")
    message = dict(zip(keys, row, strict=True))
    message["meta"] = json.loads(message["meta"]) if message["meta"] else None
    return message
