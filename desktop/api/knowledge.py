"""Read-only views of the user's documents and chats for other apps (the MCP tools), with citations.

A `Library` reads through a `SideConnection` (desktop/engine/side_connection.py): its own connection to the encrypted
store on its own thread (the store's connections are not shared across threads), so an MCP search never waits behind
the store executor's line and never races the store's owner. It only reads, apart from the access log entry each call
adds (the tool's name and the number of passages returned, never the content) and the chat index's own catch-up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from desktop.engine.side_connection import SideConnection
from storage.access_log import AccessLog
from storage.errors import KnownError

if TYPE_CHECKING:
    import sqlcipher3

    from storage.search import Searcher

T = TypeVar("T")
MAX_PASSAGES = 20
MAX_DOCUMENT_CHARS = 40_000  # about 10k tokens: what a host can put in its context without drowning it
MIN_OVERLAP = 20  # shorter shared text ("." or "the") is coincidence, not the chunker's overlap


class Library:
    def __init__(self, connect: Callable[[], sqlcipher3.Connection]) -> None:
        self._side = SideConnection("mcp-library", connect)
        self.db = self._side.db  # on the library's thread only
        self._searcher: Searcher | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the library's thread (the only one that touches its connection)."""
        return await self._side.run(fn, *args)

    def close(self) -> None:
        self._side.close()

    # -- the tools' work (library thread) -----------------------------------------------------------

    def search_documents(self, query: str, k: int) -> list[dict[str, Any]]:
        """Hybrid search (BM25 + embeddings, storage/search.py), each passage with its citation."""
        if not query.strip():
            raise KnownError("the query is empty")
        if self._searcher is None:
            from storage.search import Searcher

            self._searcher = Searcher(self.db)
        hits = self._searcher.search(query, k=max(1, min(k, MAX_PASSAGES)))
        return [
            {
                "citation": _citation(h.title, h.source, h.location),
                "source": h.source,
                "title": h.title,
                "location": h.location,
                "page": h.page,
                "heading": h.heading,
                "document_id": h.document_id,
                "text": h.text,
                "score": h.score,
            }
            for h in hits
        ]

    def list_documents(self) -> list[dict[str, Any]]:
        from storage.documents import Documents

        return [
            {"id": f.id, "path": f.path, "kind": f.kind, "chunks": f.chunks, "updated": f.updated}
            for f in Documents(self.db).list()
        ]

    def get_document(self, document: str, page: int | None, section: str | None) -> dict[str, Any]:
        """One indexed file's text (id, path or file name), or only one page / the sections under a heading."""
        from storage.documents import Documents

        matches = Documents(self.db).find(document)
        if not matches:
            raise KnownError(f"no indexed document matches {document!r} (see list_documents)")
        if len(matches) > 1:
            raise KnownError(f"{document!r} matches {len(matches)} documents: give the id from list_documents")
        record = matches[0]
        rows = (
            self.db()
            .execute(
                """SELECT c.text, c.heading, c.page, c.location, d.title FROM doc_chunks c
               JOIN documents d ON d.id = c.document_id WHERE d.file_id = ? ORDER BY d.id, c.seq""",
                [record.id],
            )
            .fetchall()
        )
        if page is not None:
            rows = [r for r in rows if r[2] == page]
        if section:
            wanted = section.casefold()
            rows = [r for r in rows if wanted in r[1].casefold()]
        if not rows:
            where = f"page {page}" if page is not None else f"a section {section!r}"
            raise KnownError(f"{Path(record.path).name} has no {where}")
        text = _join([r[0] for r in rows])
        truncated = len(text) > MAX_DOCUMENT_CHARS
        locations = list(dict.fromkeys(r[3] for r in rows if r[3]))
        return {
            "id": record.id,
            "path": record.path,
            "title": rows[0][4],
            "citation": _citation(rows[0][4], record.path, locations[0] if len(locations) == 1 else ""),
            "locations": locations,
            "text": text[:MAX_DOCUMENT_CHARS],
            "truncated": truncated,
        }

    def search_chats(self, query: str, k: int) -> list[dict[str, Any]]:
        from storage.chats import Chats

        hits = Chats(self.db).search(query, limit=max(1, min(k, MAX_PASSAGES)), marks=("", ""))
        return [
            {
                "citation": f"chat {h['title'] or h['conversation_id']!r}, {h['role']} message {h['message_id']}",
                "conversation_id": h["conversation_id"],
                "title": h["title"],
                "message_id": h["message_id"],
                "role": h["role"],
                "text": h["snippet"],
                "updated": h["updated"],
            }
            for h in hits
        ]

    def record(self, client: str, tool: str, passages: int) -> None:
        AccessLog(self.db).record(client, f"mcp:{tool}", passages)


def _citation(title: str, source: str, location: str) -> str:
    name = title or Path(source).name
    return f"{name}, {location}" if location else name


def _join(chunks: list[str]) -> str:
    """Consecutive chunks share up to ~150 characters (storage/chunking.py): drop each repeated prefix."""
    out = ""
    for chunk in chunks:
        for k in range(min(len(out), len(chunk), 400), MIN_OVERLAP - 1, -1):
            if out.endswith(chunk[:k]):
                out += chunk[k:]
                break
        else:
            out += ("\n\n" if out else "") + chunk
    return out
