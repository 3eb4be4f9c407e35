"""Files attached to one conversation: their text, kept in the encrypted store for that chat only.

An attachment is not part of the document library. It is read with the ingester's capped, FIFO-safe read,
parsed once in the parser child (its time and memory limits hold here too), chunked like a library file
and stored under its conversation: the library's search never sees it, and deleting the chat deletes it
(ON DELETE CASCADE). The whole text is kept for prompts it fits whole; the chunks are for retrieval when it
does not, and get their vectors only then (`rank`), kept beside them for the next question.

An `Attachment` can also live only in memory (a chat that is not saved, or a new chat before its first
message creates it); `Attachments.add` saves one once its conversation exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlite_utils import Database

from storage.errors import KnownError
from storage.parsers.discover import DEFAULT_MAX_BYTES
from storage.timeutil import now

if TYPE_CHECKING:  # the Store imports this module; numpy and the parsers load when a file is attached
    import numpy as np

    from storage.parsers.worker import ParserProcess


@dataclass
class Passage:
    """One chunk of an attached file: what a prompt quotes when the whole file does not fit."""

    seq: int
    location: str  # "p. 3", "Setup > Linux", "lines 10-42"
    text: str
    id: int | None = None  # its row, once saved
    vector: bytes | None = None  # float32 MiniLM vector, computed when first needed


@dataclass
class Attachment:
    name: str
    kind: str  # pdf, markdown, code, text, ...
    size: int
    sha256: str
    source: str  # where it was attached from (for "Add to library"); the text does not depend on it
    text: str
    passages: list[Passage] = field(default_factory=list)
    id: int | None = None
    created: str = ""

    @property
    def chars(self) -> int:
        return len(self.text)

    def summary(self) -> dict[str, Any]:
        """What a chip, `--json` and an export show: never the text."""
        keys = ("id", "name", "kind", "size", "chars", "sha256", "source", "created")
        return {key: getattr(self, key) for key in keys}


def read(
    path: Path,
    parser: ParserProcess | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    should_stop: Callable[[], bool] = lambda: False,
) -> Attachment:
    """Read and parse one file to attach; KnownError naming the file and the reason when it cannot be."""
    from storage.chunking import chunk_document
    from storage.ingest import _read as read_capped  # the ingester's size-capped read, never blocked by a FIFO
    from storage.parsers import kind_of
    from storage.parsers.model import ParseError
    from storage.parsers.worker import ParserProcess

    path = Path(path)
    try:
        data, _ = read_capped(path, max_bytes)
        if parser is None:
            with ParserProcess() as own:
                docs = own.parse(path.name, data, should_stop)
        else:
            docs = parser.parse(path.name, data, should_stop)
    except ParseError as exc:
        raise KnownError(f"cannot attach {path.name}: {exc}") from None
    texts: list[str] = []
    passages: list[Passage] = []
    for doc in docs:
        texts.extend(section.text.strip() for section in doc.sections if section.text.strip())
        for chunk in chunk_document(doc):
            passages.append(Passage(len(passages), chunk.location, chunk.embed_text()))
    return Attachment(
        name=path.name,
        kind=kind_of(path),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source=str(path.resolve()),
        text="\n\n".join(texts),
        passages=passages,
    )


class Attachments:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db  # a getter: Store.rekey swaps the connection underneath

    def add(self, conversation_id: int, attachment: Attachment) -> int:
        """Save `attachment` under the conversation (with its passages, in one transaction); returns its id.

        The same file (by content) attached to the same chat twice is kept once.
        """
        with self._db().atomic() as db:
            row = db.execute(
                "SELECT id FROM chat_attachments WHERE conversation_id = ? AND sha256 = ?",
                [conversation_id, attachment.sha256],
            ).fetchone()
            if row is not None:
                attachment.id = int(row[0])
                return attachment.id
            if db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone() is None:
                raise KnownError(f"there is no conversation {conversation_id}")
            attachment.created = attachment.created or now()
            cursor = db.execute(
                """INSERT INTO chat_attachments (conversation_id, name, kind, size, sha256, source, text, created)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    conversation_id,
                    attachment.name,
                    attachment.kind,
                    attachment.size,
                    attachment.sha256,
                    attachment.source,
                    attachment.text,
                    attachment.created,
                ],
            )
            assert cursor.lastrowid is not None
            attachment.id = int(cursor.lastrowid)
            for passage in attachment.passages:
                row_id = db.execute(
                    """INSERT INTO chat_attachment_passages (attachment_id, seq, location, text, vector)
                       VALUES (?, ?, ?, ?, ?)""",
                    [attachment.id, passage.seq, passage.location, passage.text, passage.vector],
                ).lastrowid
                assert row_id is not None
                passage.id = int(row_id)
            return attachment.id

    def load(self, conversation_id: int) -> list[Attachment]:
        """The conversation's attachments with their text and passages (vectors included), oldest first."""
        db = self._db()
        rows = db.execute(
            """SELECT id, name, kind, size, sha256, source, text, created FROM chat_attachments
               WHERE conversation_id = ? ORDER BY id""",
            [conversation_id],
        ).fetchall()
        attachments = [
            Attachment(name=r[1], kind=r[2], size=r[3], sha256=r[4], source=r[5], text=r[6], id=r[0], created=r[7])
            for r in rows
        ]
        by_id = {a.id: a for a in attachments}
        if by_id:
            marks = ",".join("?" * len(by_id))
            for attachment_id, pid, seq, location, text, vector in db.execute(
                f"""SELECT attachment_id, id, seq, location, text, vector FROM chat_attachment_passages
                    WHERE attachment_id IN ({marks}) ORDER BY attachment_id, seq""",
                list(by_id),
            ).fetchall():
                by_id[attachment_id].passages.append(Passage(seq, location, text, pid, vector))
        return attachments

    def list(self, conversation_id: int) -> list[dict[str, Any]]:
        """The conversation's attachments without their text, oldest first."""
        rows = self._db().execute(
            """SELECT id, name, kind, size, length(text), sha256, source, created FROM chat_attachments
               WHERE conversation_id = ? ORDER BY id""",
            [conversation_id],
        )
        keys = ("id", "name", "kind", "size", "chars", "sha256", "source", "created")
        return [dict(zip(keys, row, strict=True)) for row in rows.fetchall()]

    def get(self, attachment_id: int) -> dict[str, Any]:
        row = (
            self._db()
            .execute(
                "SELECT id, conversation_id, name, kind, size, length(text), source, created "
                "FROM chat_attachments WHERE id = ?",
                [attachment_id],
            )
            .fetchone()
        )
        if row is None:
            raise KnownError(f"there is no attachment {attachment_id}")
        keys = ("id", "conversation_id", "name", "kind", "size", "chars", "source", "created")
        return dict(zip(keys, row, strict=True))

    def remove(self, attachment_id: int) -> None:
        """Detach a file from its chat (its text and passages go with it)."""
        with self._db().atomic() as db:
            if db.execute("DELETE FROM chat_attachments WHERE id = ?", [attachment_id]).rowcount == 0:
                raise KnownError(f"there is no attachment {attachment_id}")

    def save_vectors(self, rows: Sequence[tuple[int, bytes]]) -> None:
        """(passage id, vector) pairs computed by `rank`, kept for the chat's next question."""
        if rows:
            with self._db().atomic() as db:
                for passage_id, vector in rows:
                    db.execute("UPDATE chat_attachment_passages SET vector = ? WHERE id = ?", [vector, passage_id])


class Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...


def rank(passages: Sequence[Passage], question: str, embedder: Embeds) -> list[tuple[Passage, float]]:
    """Passages most similar to `question` first (cosine of MiniLM vectors); missing vectors are computed
    and set on the passages (the caller saves the ones that have an id)."""
    import numpy as np

    from storage.embeddings import from_blobs, to_blob

    missing = [p for p in passages if p.vector is None]
    if missing:
        for passage, vector in zip(missing, embedder.embed([p.text for p in missing]), strict=True):
            passage.vector = to_blob(vector)
    if not passages:
        return []
    matrix = from_blobs([p.vector for p in passages if p.vector is not None])
    sims = matrix @ np.asarray(embedder.embed_query(question), dtype=np.float32)
    order = np.argsort(-sims, kind="stable")
    return [(passages[i], float(sims[i])) for i in order]
