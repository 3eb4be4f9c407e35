"""Writes are durable whatever ran before them: no implicit transaction may swallow later commits.

Regression: a document search wrote to a temp table, which (in the driver's default mode) silently began a
transaction; every later `atomic()` became a savepoint inside it and closing the store rolled back the chat.
"""

from __future__ import annotations

from storage.search import Searcher
from storage.store import Store


def test_a_chat_saved_after_a_keyword_search_survives_closing(store: Store) -> None:
    Searcher(lambda: store.db).keyword(["vault", "phrase"], 10)  # touches temp tables
    cid = store.chats.create("after a search")
    store.chats.add_message(cid, "user", "What is the vault phrase?")
    assert not store.db.conn.in_transaction, "a transaction was left open"
    store.close()
    with Store.open() as reopened:
        assert [c["title"] for c in reopened.chats.list()] == ["after a search"]
        assert reopened.chats.messages(cid)[0]["content"] == "What is the vault phrase?"
