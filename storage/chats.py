"""Conversations and messages, saved as they happen, with full-text search over message text.

Rows come back as plain dicts (JSON-ready for the API and `--json`):
- conversation: id, title, system_prompt, created, updated, pinned, folder, options (dict or None)
  (+ message_count in `list`)
- message: id, conversation_id, parent_id, role, content, created, updated, status, meta (dict or None)

Messages form a tree (migrations.m005): each has a parent, and the conversation's `leaf_id` ends the
branch shown. `messages()` is that branch, so a linear chat reads exactly as before; `branch_before` makes
the next message a sibling (edit and resend), `switch_to` shows another branch. Deleting a conversation
moves it to the trash first (`trash`/`restore`), so the window can offer Undo; `purge_trash` deletes for
real (the window calls it when Undo expires, at shutdown and at the next unlock).

Streaming: `add_message(..., status="streaming")` when generation starts, then `update_message` (whole
text) or `append_to_message` (a delta) per token: each is one small UPDATE committed to the WAL, so a crash
loses at most the token in flight; `update_message(..., status="complete")` at the end. Updates do not
re-index (see migrations.m002); `search` first indexes any rows changed since the last search.
"""

from __future__ import annotations

import builtins  # `Chats.list` shadows the builtin in annotations inside the class
import json
import unicodedata
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from storage.errors import KnownError
from storage.timeutil import now

ROLES = ("system", "user", "assistant", "tool")
STATUSES = ("complete", "streaming", "interrupted", "error")
_MESSAGE_COLUMNS = "id, conversation_id, parent_id, role, content, created, updated, status, meta"
_CONVERSATION_KEYS = ("id", "title", "system_prompt", "created", "updated", "pinned", "folder", "options")
_CONVERSATION_COLUMNS = ", ".join(f"c.{key}" for key in _CONVERSATION_KEYS)
SNIPPET_WORDS = 8  # words of context on each side of a search hit


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
            .execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?", [conversation_id])
            .fetchone()
        )
        if row is None:
            raise KnownError(f"there is no conversation {conversation_id}")
        return _conversation(row)

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest first, with message counts (every branch counts); trashed ones are left out."""
        sql = f"""SELECT {_CONVERSATION_COLUMNS},
                        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
                 FROM conversations c WHERE c.trashed IS NULL ORDER BY c.updated DESC, c.id DESC"""
        params: builtins.list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._db().execute(sql, params).fetchall()
        return [{**_conversation(row[:-1]), "message_count": row[-1]} for row in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        self._update_conversation(conversation_id, "title = ?", [title])

    def set_system_prompt(self, conversation_id: int, system_prompt: str | None) -> None:
        self._update_conversation(conversation_id, "system_prompt = ?", [system_prompt])

    def delete(self, conversation_id: int) -> None:
        """Deletes its messages too (ON DELETE CASCADE; the FTS rows go with them via trigger)."""
        with self._db().atomic() as db:
            if db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id]).rowcount == 0:
                raise KnownError(f"there is no conversation {conversation_id}")

    # -- organisation -------------------------------------------------------------------------------
    # None of these bump `updated`: pinning or filing a chat must not move it to "Today".

    def pin(self, conversation_id: int, pinned: bool = True) -> None:
        self._set(conversation_id, "pinned = ?", [int(pinned)])

    def set_folder(self, conversation_id: int, folder: str) -> None:
        """File a conversation in a folder ("" takes it out of any)."""
        self._set(conversation_id, "folder = ?", [" ".join(folder.split())])

    def folders(self) -> builtins.list[str]:
        rows = self._db().execute(
            "SELECT DISTINCT folder FROM conversations WHERE folder != '' AND trashed IS NULL ORDER BY folder"
        )
        return [row[0] for row in rows.fetchall()]

    def set_options(self, conversation_id: int, options: dict[str, Any] | None) -> None:
        """Per-chat generation options (temperature, model); None: the defaults."""
        self._set(conversation_id, "options = ?", [_meta_json(options or None)])

    def trash(self, conversation_id: int) -> None:
        """Hide a conversation until `restore` or `purge_trash` (delete with undo)."""
        self._set(conversation_id, "trashed = ?", [now()])

    def restore(self, conversation_id: int) -> None:
        self._set(conversation_id, "trashed = NULL", [])

    def purge_trash(self) -> int:
        """Delete every trashed conversation for real; returns how many."""
        with self._db().atomic() as db:
            return max(db.execute("DELETE FROM conversations WHERE trashed IS NOT NULL").rowcount, 0)

    def _set(self, conversation_id: int, assignment: str, params: builtins.list[Any]) -> None:
        with self._db().atomic() as db:
            cursor = db.execute(f"UPDATE conversations SET {assignment} WHERE id = ?", [*params, conversation_id])
            if cursor.rowcount == 0:
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
        """The branch shown: from the first message to the conversation's leaf (a child's id is always
        greater than its parent's, so id order is path order)."""
        rows = (
            self._db()
            .execute(
                f"""WITH RECURSIVE path(id) AS (
                        SELECT leaf_id FROM conversations WHERE id = ? AND leaf_id IS NOT NULL
                        UNION ALL SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id
                        WHERE m.parent_id IS NOT NULL)
                    SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id IN path ORDER BY id""",
                [conversation_id],
            )
            .fetchall()
        )
        return [_message(row) for row in rows]

    def tree(self, conversation_id: int) -> builtins.list[dict[str, Any]]:
        """Every message of every branch, in id order (each names its parent)."""
        rows = self._db().execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id]
        )
        return [_message(row) for row in rows.fetchall()]

    def branches(self, conversation_id: int) -> dict[int, builtins.list[int]]:
        """For each message that has alternatives: its siblings' ids (itself included), oldest first."""
        rows = self._db().execute(
            "SELECT id, parent_id FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id]
        )
        children: dict[int | None, builtins.list[int]] = {}
        for message_id, parent_id in rows.fetchall():
            children.setdefault(parent_id, []).append(message_id)
        return {m: ids for ids in children.values() if len(ids) > 1 for m in ids}

    def branch_before(self, message_id: int) -> None:
        """Make the next message added a sibling of `message_id` (edit and resend keeps the old one)."""
        message = self.message(message_id)
        self._set(message["conversation_id"], "leaf_id = ?", [message["parent_id"]])

    def switch_to(self, message_id: int) -> None:
        """Show the branch through `message_id`, down its newest replies."""
        message = self.message(message_id)
        db = self._db()
        leaf = message_id
        newest_child = "SELECT max(id) FROM messages WHERE parent_id = ?"
        while (child := db.execute(newest_child, [leaf]).fetchone()[0]) is not None:
            leaf = child
        self._set(message["conversation_id"], "leaf_id = ?", [leaf])

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
        """Append to the branch shown: the new message's parent is the conversation's leaf, then its leaf."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        _check_status(status)
        stamp = now()
        with self._db().atomic() as db:
            cursor = db.execute(
                """INSERT INTO messages (conversation_id, parent_id, role, content, created, updated, status, meta)
                   VALUES (?, (SELECT leaf_id FROM conversations WHERE id = ?), ?, ?, ?, ?, ?, ?)""",
                [conversation_id, conversation_id, role, content, stamp, stamp, status, _meta_json(meta)],
            )
            message_id = int(cursor.lastrowid)
            db.execute(
                "UPDATE conversations SET updated = ?, leaf_id = ? WHERE id = ?", [stamp, message_id, conversation_id]
            )
            return message_id

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
        """Delete a message and every reply under it; a branch shown through it falls back to its parent."""
        with self._db().atomic() as db:
            row = db.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?", [message_id]).fetchone()
            if row is None:
                return
            conversation_id, parent_id = row
            doomed = [
                r[0]
                for r in db.execute(
                    """WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL
                           SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id)
                       SELECT id FROM sub""",
                    [message_id],
                ).fetchall()
            ]
            marks = ",".join("?" * len(doomed))
            db.execute(
                f"UPDATE conversations SET leaf_id = ? WHERE id = ? AND leaf_id IN ({marks})",
                [parent_id, conversation_id, *doomed],
            )
            db.execute(f"DELETE FROM messages WHERE id IN ({marks})", doomed)

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
        text = text.replace("\x00", "").strip()  # FTS5 reads a NUL as the end of the query ("unterminated string")
        if not text:
            return []
        self.index_pending()
        keys = ("conversation_id", "title", "message_id", "role", "snippet", "updated")
        db = self._db()
        if len(text) >= 3:
            phrase = '"' + text.replace('"', '""') + '"'
            rows = db.execute(
                """SELECT m.conversation_id, c.title, m.id, m.role, m.content, c.updated
                   FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
                   JOIN conversations c ON c.id = m.conversation_id
                   WHERE messages_fts MATCH ? AND c.trashed IS NULL ORDER BY rank LIMIT ?""",
                [phrase, limit],
            ).fetchall()
        else:  # trigram cannot match under 3 characters; the table scan is fine at chat scale
            rows = db.execute(
                """SELECT m.conversation_id, c.title, m.id, m.role, m.content, c.updated
                   FROM messages m JOIN conversations c ON c.id = m.conversation_id
                   WHERE m.content LIKE ? ESCAPE '\\' AND c.trashed IS NULL ORDER BY m.id DESC LIMIT ?""",
                ["%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit],
            ).fetchall()
        hits = [dict(zip(keys, row, strict=True)) for row in rows]
        for hit in hits:
            hit["snippet"] = snippet(hit["snippet"], text, marks)
        return hits

    def index_pending(self) -> int:
        """Index messages written or changed since the last search; returns how many."""
        with self._db().atomic() as db:
            cursor = db.execute(
                "INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages WHERE indexed = 0"
            )
            count = cursor.rowcount
            db.execute("UPDATE messages SET indexed = 1 WHERE indexed = 0")
        return max(count, 0)


def snippet(content: str, query: str, marks: tuple[str, str] = ("[", "]"), words: int = SNIPPET_WORDS) -> str:
    """`words` words either side of the first match, the whole words it touches marked.

    FTS5's snippet() cuts at trigram tokens, so "gress" came back as "pro[gress]ive" or a half word at
    the edge; matching here (case- and accent-insensitive, like the index) keeps every word whole.
    """
    folded, where = _fold(content)
    needle = _fold(query.strip())[0]
    at = folded.find(needle) if needle else -1
    if at < 0:
        return " ".join(content[:120].split())
    start, end = where[at], where[at + len(needle) - 1] + 1
    while start > 0 and _wordy(content[start - 1]):
        start -= 1
    while end < len(content) and _wordy(content[end]):
        end += 1
    before = content[:start].split()
    after = content[end:].split()
    head = ("… " if len(before) > words else "") + " ".join(before[-words:])
    tail = " ".join(after[:words]) + (" …" if len(after) > words else "")
    lead = " " if content[:start][-1:].isspace() else ""
    trail = " " if content[end : end + 1].isspace() else ""
    hit = " ".join(content[start:end].split())
    return f"{head}{lead}{marks[0]}{hit}{marks[1]}{trail}{tail}".strip()


def _wordy(char: str) -> bool:
    return char.isalnum() or char in "_'\u2019-"


def _fold(text: str) -> tuple[str, list[int]]:
    """Casefolded text without accents, and for each of its characters the index it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        for piece in unicodedata.normalize("NFKD", char.casefold()):
            if not unicodedata.combining(piece):
                out.append(piece)
                where.append(i)
    return "".join(out), where


def _conversation(row: tuple[Any, ...]) -> dict[str, Any]:
    conversation = dict(zip(_CONVERSATION_KEYS, row, strict=True))
    conversation["pinned"] = bool(conversation["pinned"])
    conversation["options"] = json.loads(conversation["options"]) if conversation["options"] else None
    return conversation


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")


def _meta_json(meta: dict[str, Any] | None) -> str | None:
    return None if meta is None else json.dumps(meta, ensure_ascii=False)


def _message(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "conversation_id", "parent_id", "role", "content", "created", "updated", "status", "meta")
    message = dict(zip(keys, row, strict=True))
    message["meta"] = json.loads(message["meta"]) if message["meta"] else None
    return message
