"""Chats on a real encrypted store: CRUD, streaming persistence, search."""

from __future__ import annotations

import pytest

from storage.errors import KnownError
from storage.store import Store


def test_conversation_lifecycle(store: Store) -> None:
    first = store.chats.create("first", system_prompt="be brief")
    second = store.chats.create("second")
    store.chats.add_message(first, "user", "hi")
    assert [c["id"] for c in store.chats.list()] == [first, second]  # newest activity first
    store.chats.rename(second, "renamed")
    assert store.chats.get(second)["title"] == "renamed"
    assert store.chats.get(first)["system_prompt"] == "be brief"
    store.chats.delete(first)
    assert [c["id"] for c in store.chats.list()] == [second]
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    with pytest.raises(KnownError, match="no conversation"):
        store.chats.get(first)
    with pytest.raises(KnownError, match="no conversation"):
        store.chats.rename(first, "x")


def test_streamed_reply_is_saved_token_by_token(store: Store) -> None:
    conversation = store.chats.create("stream")
    reply = store.chats.add_message(conversation, "assistant", "", status="streaming")
    for token in ["The ", "quick ", "fox"]:
        store.chats.append_to_message(reply, token)
        assert not store.db.conn.in_transaction  # committed per token
    assert store.chats.message(reply)["content"] == "The quick fox"
    assert store.chats.message(reply)["status"] == "streaming"
    store.chats.update_message(reply, "The quick brown fox", status="complete", meta={"tokens": 4})
    message = store.chats.messages(conversation)[0]
    assert (message["content"], message["status"], message["meta"]) == (
        "The quick brown fox",
        "complete",
        {"tokens": 4},
    )


def test_search_follows_edits_and_deletes(store: Store) -> None:
    conversation = store.chats.create("edits")
    message = store.chats.add_message(conversation, "user", "apples and pears")
    assert [h["message_id"] for h in store.chats.search("pears")] == [message]
    store.chats.update_message(message, "apples and plums")
    assert store.chats.search("pears") == []
    assert [h["message_id"] for h in store.chats.search("plums")] == [message]
    store.chats.delete_message(message)
    assert store.chats.search("plums") == []
    assert store.integrity_check() == ["ok"]


def test_search_is_substring_case_and_accent_insensitive(store: Store) -> None:
    conversation = store.chats.create("Café notes")
    store.chats.add_message(conversation, "user", "The CAFÉ serves Progressive jazz")
    hits = store.chats.search("cafe")
    assert hits and hits[0]["title"] == "Café notes" and "[" in hits[0]["snippet"]
    assert store.chats.search("gressiv")
    assert store.chats.search("NOT jazz OR") == []  # operators are plain text, not FTS syntax
    assert store.chats.search('"quoted') == []
    assert store.chats.search("ja")  # under three characters: LIKE fallback
    assert store.chats.search("   ") == []


def test_unknown_role_and_status_are_rejected(store: Store) -> None:
    conversation = store.chats.create("x")
    with pytest.raises(ValueError):
        store.chats.add_message(conversation, "robot", "hi")
    with pytest.raises(ValueError):
        store.chats.add_message(conversation, "user", "hi", status="done")


def test_settings_round_trip(store: Store) -> None:
    assert store.settings.get("missing", 3) == 3
    store.settings.set("api_token", "tok")
    store.settings.set("api_token", {"v": [1, 2]})
    assert store.settings.get("api_token") == {"v": [1, 2]}
    assert store.settings.keys() == ["api_token"]
    store.settings.delete("api_token")
    assert store.settings.get("api_token") is None


def test_a_nul_in_the_search_box_is_not_an_error(store: Store) -> None:
    """FTS5 used to read a NUL as the end of the query and fail with "unterminated string"."""
    cid = store.chats.create("t")
    store.chats.add_message(cid, "user", "hello there")
    for query in ("hel\x00lo", "\x00", "he\x00"):
        store.chats.search(query)
    assert [h["message_id"] for h in store.chats.search("hel\x00lo there")] == [store.chats.messages(cid)[0]["id"]]
