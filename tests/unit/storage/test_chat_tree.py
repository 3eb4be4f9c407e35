"""Chat branches, pins, folders, trash and whole-word search snippets on a real encrypted store."""

from __future__ import annotations

import json

from storage.chats import snippet
from storage.store import Store


def contents(store: Store, cid: int) -> list[str]:
    return [m["content"] for m in store.chats.messages(cid)]


def test_edit_and_resend_keeps_the_old_turn_as_a_branch(store: Store) -> None:
    chats = store.chats
    cid = chats.create("tree")
    question = chats.add_message(cid, "user", "first question")
    chats.add_message(cid, "assistant", "first answer")
    chats.branch_before(question)  # the user edits "first question"
    edited = chats.add_message(cid, "user", "edited question")
    chats.add_message(cid, "assistant", "second answer")
    assert contents(store, cid) == ["edited question", "second answer"]
    assert chats.branches(cid)[edited] == [question, edited]
    chats.switch_to(question)
    assert contents(store, cid) == ["first question", "first answer"]
    chats.switch_to(edited)
    assert contents(store, cid) == ["edited question", "second answer"]
    assert len(chats.tree(cid)) == 4 and chats.list()[0]["message_count"] == 4
    chats.delete_message(edited)  # a branch goes with its replies; the view falls back to its parent
    assert contents(store, cid) == []
    chats.switch_to(question)
    assert contents(store, cid) == ["first question", "first answer"] and chats.branches(cid) == {}
    assert store.integrity_check() == ["ok"]


def test_a_deep_branch_deletes_without_hitting_sqlite_limits(store: Store) -> None:
    cid = store.chats.create("long")
    first = store.chats.add_message(cid, "user", "0")
    with store.db.atomic():
        for i in range(1, 1200):
            store.chats.add_message(cid, "user" if i % 2 == 0 else "assistant", str(i))
    assert len(store.chats.messages(cid)) == 1200
    store.chats.delete_message(first)
    assert store.chats.tree(cid) == []


def test_pin_folder_and_options_do_not_reorder_by_date(store: Store) -> None:
    chats = store.chats
    old, new = chats.create("old"), chats.create("new")
    before = chats.get(old)["updated"]
    chats.pin(old)
    chats.set_folder(old, "  Work   trips ")
    chats.set_options(old, {"temperature": 0.2})
    got = chats.get(old)
    assert (got["pinned"], got["folder"], got["options"], got["updated"]) == (
        True,
        "Work trips",
        {"temperature": 0.2},
        before,
    )
    assert [c["id"] for c in chats.list()] == [new, old]
    assert chats.folders() == ["Work trips"]
    chats.pin(old, False)
    chats.set_folder(old, "")
    chats.set_options(old, None)
    got = chats.get(old)
    assert (got["pinned"], got["folder"], got["options"]) == (False, "", None)


def test_trash_hides_until_restored_and_purge_deletes_for_real(store: Store) -> None:
    chats = store.chats
    cid = chats.create("secret")
    chats.add_message(cid, "user", "the zebra password")
    chats.trash(cid)
    assert chats.list() == [] and chats.search("zebra") == []
    chats.restore(cid)
    assert [c["id"] for c in chats.list()] == [cid] and chats.search("zebra")
    chats.trash(cid)
    assert chats.purge_trash() == 1
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_search_snippet_keeps_the_matched_word_whole(store: Store) -> None:
    cid = store.chats.create("words")
    text = "one two three four five six seven eight nine ten eleven twelve Progressive jazz at the Café tonight"
    store.chats.add_message(cid, "user", text)
    hit = store.chats.search("gressi")[0]
    assert "[Progressive]" in hit["snippet"]
    assert hit["snippet"].startswith("… five six") and hit["snippet"].endswith("tonight")
    assert "[Café]" in store.chats.search("cafe")[0]["snippet"]
    assert "[Progressive]" in store.chats.search("ss")[0]["snippet"]  # the LIKE path too


def test_snippet_edges() -> None:
    assert snippet("naïve café", "CAFE") == "naïve [café]"
    assert snippet("x" * 200, "nothing") == "x" * 120
    assert snippet("don't stop", "on", ("<", ">")) == "<don't> stop"
    assert json.dumps(snippet("a\nb  hit\tc", "hit")) == json.dumps("a b [hit] c")
