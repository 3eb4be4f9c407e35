"""Files attached to one chat, on a real SQLCipher store, the real parser child, the bundled model and MiniLM.

Covers: an attachment made before the first message is saved with the conversation and only there (the
library never sees it); its text reaches the prompt (measured in prompt tokens, not in the tiny model's
words); a file too long for the context is retrieved from, within budget, with the relevant passage kept
and its vectors saved for the next question; remove, cascade on delete, one copy per file; clear errors;
and no plaintext of an attachment on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.engine import SamplingParams
from desktop.engine.attachments import build_block
from desktop.engine.conversation import Conversation
from storage import attachments
from storage.embeddings import Embedder
from storage.errors import KnownError
from storage.search import search

ONE_TOKEN = SamplingParams(max_tokens=1, temperature=0.0)
CANARY = "Quokka-lantern-93be1 is the attic password"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


def _long_file(path: Path) -> Path:
    """160 paragraphs of bread recipes and one about a lighthouse cat: far over any test context."""
    paragraphs = [
        f"Recipe {n}. Knead {n} grams of flour with water, yeast and a pinch of salt, then bake for {n % 40 + 20} "
        f"minutes until the crust is golden."
        for n in range(160)
    ]
    paragraphs.insert(113, "The lighthouse keeper's cat is named Pemberton and sleeps on the lamp room stairs.")
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


def test_attached_before_the_first_message_is_saved_with_that_chat_only(store, engine, tmp_path: Path) -> None:
    notes = tmp_path / "trip notes.md"
    notes.write_text("# Trip\n\nThe ferry to the island leaves at 07:40 from pier 3.\n", encoding="utf-8")
    plain = Conversation(engine, store=store, save=False).ask("When does the ferry leave?", ONE_TOKEN)
    chat = Conversation(engine, store=store)
    attached = chat.attach(notes)
    assert attached.id is None  # no conversation to keep it in yet
    assert store.db.execute("SELECT count(*) FROM chat_attachments").fetchone()[0] == 0
    reply = chat.ask("When does the ferry leave?", ONE_TOKEN)
    assert reply.stats is not None and plain.stats is not None
    file_tokens = engine.count_tokens(attached.text)
    assert reply.stats.prompt_tokens >= plain.stats.prompt_tokens + file_tokens  # the text went into the prompt
    assert reply.sources == [{"source": "trip notes.md", "location": "whole file", "attached": True}]
    cid = reply.conversation_id
    assert cid is not None
    listed = store.attachments.list(cid)
    assert [(a["name"], a["kind"], a["chars"]) for a in listed] == [("trip notes.md", "markdown", attached.chars)]
    assert listed[0]["source"] == str(notes.resolve())
    # The library knows nothing of it; another chat does not get it.
    assert store.db.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
    assert search(store, "ferry island pier", k=3) == []
    other = Conversation(engine, store=store).ask("When does the ferry leave?", ONE_TOKEN)
    assert other.sources == [] and store.attachments.list(other.conversation_id) == []
    # Reopened (the window, a later `hearth chat`), the chat still answers from it.
    again = Conversation(engine, store=store, conversation_id=cid)
    assert [a.name for a in again.attachments] == ["trip notes.md"]
    assert again.ask("And the pier?", ONE_TOKEN).sources[0]["source"] == "trip notes.md"


def test_a_file_too_long_for_the_context_is_retrieved_from(store, engine, embedder, tmp_path: Path) -> None:
    big = attachments.read(_long_file(tmp_path / "household.txt"))
    assert engine.count_tokens(big.text) > engine.n_ctx * 2
    question = "What is the name of the lighthouse keeper's cat?"
    chat = Conversation(engine, store=store, attachments=[big], embedder=lambda: embedder)
    reply = chat.ask(question, ONE_TOKEN)
    assert reply.error is None and reply.stats is not None
    assert reply.stats.prompt_tokens < engine.n_ctx
    # Every passage got its vector once, kept in the store: the chat's next question embeds nothing.
    reopened = Conversation(engine, store=store, conversation_id=reply.conversation_id)
    passages = reopened.attachments[0].passages
    assert len(passages) == len(big.passages) and all(p.vector is not None for p in passages)
    budget = engine.n_ctx // 2
    block, sources, fresh = build_block(reopened.attachments, question, budget, engine.count_tokens, lambda: embedder)
    assert fresh == []
    assert engine.count_tokens(block) <= budget
    assert "Pemberton" in block
    assert 1 < len(sources) < len(passages)
    assert all(s["source"] == "household.txt" and s["location"].startswith("line") for s in sources)
    assert reply.sources == sources


def test_remove_one_copy_and_cascade(store, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("alpha beta gamma", encoding="utf-8")
    cid = store.chats.create("chat")
    first = store.attachments.add(cid, attachments.read(path))
    assert store.attachments.add(cid, attachments.read(path)) == first  # the same file twice: one copy
    second = store.attachments.add(cid, attachments.read(_long_file(tmp_path / "b.txt")))
    assert [a["id"] for a in store.attachments.list(cid)] == [first, second]
    store.attachments.remove(first)
    assert [a["id"] for a in store.attachments.list(cid)] == [second]
    with pytest.raises(KnownError, match="no attachment"):
        store.attachments.remove(first)
    store.chats.delete(cid)
    assert store.db.execute("SELECT count(*) FROM chat_attachments").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM chat_attachment_passages").fetchone()[0] == 0
    with pytest.raises(KnownError, match="no conversation"):
        store.attachments.add(cid, attachments.read(path))


def test_files_that_cannot_be_attached_get_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    cases = {
        "missing.txt": "cannot attach missing.txt: cannot read",
        "folder": "cannot attach folder: is a folder",
        "empty.txt": "cannot attach empty.txt: empty file",
    }
    for name, message in cases.items():
        with pytest.raises(KnownError, match=message):
            attachments.read(tmp_path / name)


def test_attachment_text_never_reaches_disk_in_plaintext(store, tmp_path: Path, hearth_home: Path) -> None:
    source = tmp_path / "outside" / "secret.txt"
    source.parent.mkdir()
    source.write_text(f"{CANARY}.\n" * 50, encoding="utf-8")
    cid = store.chats.create("chat")
    store.attachments.add(cid, attachments.read(source))
    assert CANARY in store.attachments.load(cid)[0].text
    store.close()
    needles = [CANARY.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be")]
    scanned = [p for p in hearth_home.rglob("*") if p.is_file()]
    assert scanned
    for path in scanned:
        assert not any(n in path.read_bytes() for n in needles), f"attachment text in plaintext in {path.name}"
