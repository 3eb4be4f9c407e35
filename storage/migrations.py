"""Versioned schema: named migration functions applied in order, each in its own transaction.

The schema version is `PRAGMA user_version` = how many entries of `MIGRATIONS` have been applied; it is
written in the same transaction as the migration, so a crash leaves either the old or the new schema.
Before any pending migration on an existing database the Store writes an encrypted backup (see
`Store._backup`). A database with a higher version than this code knows is refused: an older Hearth must
not write into a schema it does not understand.

Adding a migration (documents, personalization, …): write `def m00N_what(db: Database) -> None` that
issues its statements with `db.execute(...)` (never `executescript`, which commits mid-migration) and
APPEND it to `MIGRATIONS`. Never edit, reorder or remove an entry that has shipped: databases in the
wild have already run it (tests/fixtures/v1_store.db was built by `m001_chats` as it is below).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlite_utils import Database

from storage.errors import KnownError
from storage.timeutil import now


def _run(db: Database, statements: list[str]) -> None:
    for sql in statements:
        db.execute(sql)


def m001_chats(db: Database) -> None:
    """Conversations and messages, with a trigram FTS5 index kept in step by triggers (schema v1)."""
    _run(
        db,
        [
            """CREATE TABLE conversations (
                id INTEGER PRIMARY KEY,
                title TEXT NOT NULL DEFAULT '',
                system_prompt TEXT,
                created TEXT NOT NULL,
                updated TEXT NOT NULL)""",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
                content TEXT NOT NULL DEFAULT '',
                created TEXT NOT NULL)""",
            "CREATE INDEX messages_by_conversation ON messages(conversation_id, id)",
            "CREATE INDEX conversations_by_updated ON conversations(updated)",
            # Trigram: substring search ("gress" finds "progress"), works for CJK and code identifiers,
            # no stemming surprises; costs a larger index, fine for chat-sized text. Queries under three
            # characters fall back to LIKE in Chats.search.
            """CREATE VIRTUAL TABLE messages_fts USING fts5(
                content, content='messages', content_rowid='id', tokenize='trigram remove_diacritics 1')""",
            """CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END""",
            """CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
                END""",
            """CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END""",
        ],
    )


def m002_streaming_messages(db: Database) -> None:
    """Status/meta/updated on messages, and lazy FTS indexing so a streamed token is a cheap UPDATE.

    v1 re-indexed the whole message on every token (O(n²) per reply). Now an update only drops the row
    from the index (once) and flags it; `Chats.search` indexes flagged rows before querying.
    """
    _run(
        db,
        [
            "ALTER TABLE messages ADD COLUMN updated TEXT",
            "UPDATE messages SET updated = created",
            "ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'",
            "ALTER TABLE messages ADD COLUMN meta TEXT",
            "ALTER TABLE messages ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0",
            "UPDATE messages SET indexed = 1",  # v1's triggers indexed every row
            "CREATE INDEX messages_unindexed ON messages(id) WHERE indexed = 0",
            "DROP TRIGGER messages_ai",
            "DROP TRIGGER messages_ad",
            "DROP TRIGGER messages_au",
            """CREATE TRIGGER messages_ad AFTER DELETE ON messages WHEN old.indexed BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
                END""",
            """CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages WHEN old.indexed BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
                UPDATE messages SET indexed = 0 WHERE id = new.id; END""",
        ],
    )


def m003_settings_and_blobs(db: Database) -> None:
    """Settings KV and the blob index; blob file keys derive from a random master kept in here."""
    _run(
        db,
        [
            "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL)",
            """CREATE TABLE blob_keys (
                generation INTEGER PRIMARY KEY, key BLOB NOT NULL, created TEXT NOT NULL)""",
            """CREATE TABLE blobs (
                name TEXT PRIMARY KEY,
                file TEXT NOT NULL UNIQUE,
                generation INTEGER NOT NULL REFERENCES blob_keys(generation),
                size INTEGER NOT NULL,
                created TEXT NOT NULL,
                updated TEXT NOT NULL)""",
        ],
    )
    db.execute("INSERT INTO blob_keys VALUES (1, ?, ?)", [secrets.token_bytes(32), now()])


def m004_documents(db: Database) -> None:
    """Document files, documents, chunks with a porter-stemmed FTS5 index, vectors, and a generation counter."""
    _run(
        db,
        [
            """CREATE TABLE doc_files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            added TEXT NOT NULL,
            updated TEXT NOT NULL)""",
            """CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES doc_files(id) ON DELETE CASCADE,
            part TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL,
            meta TEXT,
            UNIQUE (file_id, part))""",
            """CREATE TABLE doc_chunks (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            page INTEGER,
            location TEXT NOT NULL,
            UNIQUE (document_id, seq))""",
            # Porter stemming: document questions are natural language ("watering" should find "water").
            """CREATE VIRTUAL TABLE doc_chunks_fts USING fts5(
            text, heading, content='doc_chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2')""",
            """CREATE TRIGGER doc_chunks_ai AFTER INSERT ON doc_chunks BEGIN
            INSERT INTO doc_chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading); END""",
            """CREATE TRIGGER doc_chunks_ad AFTER DELETE ON doc_chunks BEGIN
            INSERT INTO doc_chunks_fts(doc_chunks_fts, rowid, text, heading)
            VALUES ('delete', old.id, old.text, old.heading); END""",
            """CREATE TABLE doc_vectors (
            chunk_id INTEGER PRIMARY KEY REFERENCES doc_chunks(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL)""",
            "CREATE TABLE doc_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO doc_state VALUES ('vectors', 0)",
            """CREATE TRIGGER doc_vectors_ai AFTER INSERT ON doc_vectors BEGIN
            UPDATE doc_state SET value = value + 1 WHERE key = 'vectors'; END""",
            """CREATE TRIGGER doc_vectors_ad AFTER DELETE ON doc_vectors BEGIN
            UPDATE doc_state SET value = value + 1 WHERE key = 'vectors'; END""",
            "CREATE INDEX documents_by_file ON documents(file_id)",
        ],
    )


def m005_api_access_log(db: Database) -> None:
    """What each local-API client reached: client, time, endpoint or tool, passages returned (never content)."""
    _run(
        db,
        [
            """CREATE TABLE api_access (
                id INTEGER PRIMARY KEY,
                client TEXT NOT NULL,
                at TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                passages INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX api_access_by_client ON api_access(client, id)",
        ],
    )


def m006_chat_tree_and_organisation(db: Database) -> None:
    """Messages form a tree (edit and resend keeps the old turn as a branch); conversations get a pin, a
    folder, per-chat options and a trash stamp (delete with undo).

    `parent_id` has no foreign key on purpose: a cascade down a 1,000-message chain would nest 1,000 deep
    and hit SQLite's trigger-depth limit; `Chats.delete_message` removes a subtree itself. `leaf_id` is
    the last message of the branch shown; existing chats become one linear branch.
    """
    _run(
        db,
        [
            "ALTER TABLE messages ADD COLUMN parent_id INTEGER",
            """UPDATE messages SET parent_id = (SELECT max(p.id) FROM messages p
                WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)""",
            "CREATE INDEX messages_by_parent ON messages(parent_id)",
            "ALTER TABLE conversations ADD COLUMN leaf_id INTEGER",
            """UPDATE conversations SET leaf_id = (SELECT max(m.id) FROM messages m
                WHERE m.conversation_id = conversations.id)""",
            "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE conversations ADD COLUMN folder TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE conversations ADD COLUMN options TEXT",  # JSON: per-chat temperature, model
            "ALTER TABLE conversations ADD COLUMN trashed TEXT",  # deleted with undo pending; purged at open
        ],
    )


def m007_chat_attachments(db: Database) -> None:
    """Files attached to one conversation (storage/attachments.py): the whole text, and its passages with
    vectors computed only when retrieval needs them. Not the document library: its search never sees them."""
    _run(
        db,
        [
            """CREATE TABLE chat_attachments (
                id INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                size INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                source TEXT NOT NULL,
                text TEXT NOT NULL,
                created TEXT NOT NULL)""",
            "CREATE INDEX chat_attachments_by_conversation ON chat_attachments(conversation_id, id)",
            """CREATE TABLE chat_attachment_passages (
                id INTEGER PRIMARY KEY,
                attachment_id INTEGER NOT NULL REFERENCES chat_attachments(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                location TEXT NOT NULL,
                text TEXT NOT NULL,
                vector BLOB)""",
            "CREATE INDEX chat_attachment_passages_by_attachment ON chat_attachment_passages(attachment_id, seq)",
        ],
    )


# Append only (see the module docstring). Index i holds the migration that takes the schema to version i+1.
MIGRATIONS: list[Callable[[Database], None]] = [
    m001_chats,
    m002_streaming_messages,
    m003_settings_and_blobs,
    m004_documents,
    m005_api_access_log,
    m006_chat_tree_and_organisation,
    m007_chat_attachments,
]


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def pending(db: Database) -> list[Callable[[Database], None]]:
    version = schema_version(db)
    if version > len(MIGRATIONS):
        raise KnownError(
            f"this database was written by a newer Hearth (schema version {version}, this one knows "
            f"{len(MIGRATIONS)}): update Hearth to open it"
        )
    return MIGRATIONS[version:]


def migrate(db: Database, before: Callable[[int], object] | None = None, upto: int | None = None) -> int:
    """Apply pending migrations (up to version `upto`); `before(version)` runs first on a non-empty schema.

    Returns how many were applied.
    """
    todo = pending(db)
    start = schema_version(db)
    if upto is not None:
        todo = todo[: max(0, upto - start)]
    if not todo:
        return 0
    if before is not None and start > 0:  # a new, empty database has nothing to back up
        before(start)
    for version, migration in enumerate(todo, start=start + 1):
        with db.atomic():
            migration(db)
            db.execute(f"PRAGMA user_version = {version}")
    return len(todo)
