"""The shared `store` fixture gives an open, migrated, passphrase-custody store."""

from __future__ import annotations

from storage import migrations
from storage.store import Store


def test_store_fixture_is_open_and_migrated(store: Store) -> None:
    assert store.custody == "passphrase"
    assert migrations.schema_version(store.db) == len(migrations.MIGRATIONS)
    conversation = store.chats.create("first")
    store.chats.add_message(conversation, "user", "hello there")
    assert store.chats.search("hello")[0]["conversation_id"] == conversation
    store.settings.set("active_adapter", {"name": "a1"})
    assert store.settings.get("active_adapter") == {"name": "a1"}
    store.blobs.put("adapter", b"\x00\x01weights")
    assert store.blobs.get("adapter") == b"\x00\x01weights"
