"""storage/clients.py: named API clients, hashed tokens, scopes; storage/access_log.py: what left the store."""

from __future__ import annotations

import pytest

from storage import clients as clients_mod
from storage.access_log import KEEP_ROWS, PRUNE_EVERY, AccessLog
from storage.clients import DEFAULT_CLIENT, SCOPES, Clients, parse_scopes
from storage.errors import KnownError


def test_a_token_finds_its_client_and_nothing_else(store) -> None:
    registry = Clients(store.settings)
    editor = registry.add("editor", frozenset({"chat"}))
    notes = registry.add("notes", frozenset({"documents", "embeddings"}))
    found = {c.name: c for c in registry.list()}
    assert clients_mod.find(found, editor).name == "editor"
    assert clients_mod.find(found, notes).scopes == {"documents", "embeddings"}
    for wrong in ("", editor[:-1], editor + "x", notes.upper(), clients_mod.hash_token(editor)):
        assert clients_mod.find(found, wrong) is None
    assert found["editor"].allows("chat") and not found["editor"].allows("documents")


def test_rotate_replaces_only_that_clients_token(store) -> None:
    registry = Clients(store.settings)
    old = registry.add("editor", frozenset({"chat"}))
    other = registry.add("notes", frozenset({"chat"}))
    new = registry.rotate("editor")
    current = {c.name: c for c in registry.list()}
    assert clients_mod.find(current, old) is None and clients_mod.find(current, new).name == "editor"
    assert clients_mod.find(current, other).name == "notes"
    assert current["editor"].scopes == {"chat"}


def test_bad_names_scopes_and_unknown_clients_are_known_errors(store) -> None:
    registry = Clients(store.settings)
    for name in ("", "-x", "a b", "../x", "x" * 65):
        with pytest.raises(KnownError, match="client name"):
            registry.add(name, frozenset({"chat"}))
    with pytest.raises(KnownError, match="scopes"):
        parse_scopes("chat,root")
    with pytest.raises(KnownError, match="scopes"):
        parse_scopes(" , ")
    assert parse_scopes(" chat , chats ") == {"chat", "chats"}
    with pytest.raises(KnownError, match="no API client named 'ghost'"):
        registry.revoke("ghost")
    with pytest.raises(KnownError, match="no API client"):
        registry.rotate("ghost")


def test_the_default_client_has_every_scope(store) -> None:
    registry = Clients(store.settings)
    assert registry.default_token() is not None
    assert registry.get(DEFAULT_CLIENT).scopes == set(SCOPES)


def test_tokenless_is_off_by_default(store) -> None:
    registry = Clients(store.settings)
    assert registry.ollama_tokenless is False
    registry.set_ollama_tokenless(True)
    assert Clients(store.settings).ollama_tokenless is True


def test_access_log_keeps_the_newest_entries_and_last_use(store) -> None:
    log = AccessLog(lambda: store.db)
    log.record("editor", "POST /api/chat")
    log.record("notes", "mcp:search_documents", 3)
    log.record("editor", "POST /api/embed")
    assert [(e.client, e.endpoint, e.passages) for e in log.recent(2)] == [
        ("editor", "POST /api/embed", 0),
        ("notes", "mcp:search_documents", 3),
    ]
    assert [e.endpoint for e in log.recent(10, client="notes")] == ["mcp:search_documents"]
    last = log.last_use()
    assert set(last) == {"editor", "notes"} and last["editor"] > last["notes"]


def test_access_log_is_pruned(store) -> None:
    log = AccessLog(lambda: store.db)
    for row_id in (1, KEEP_ROWS * 2):  # an old entry, and a recent one that sets where the ids go on
        store.db.execute("INSERT INTO api_access (id, client, at, endpoint) VALUES (?, 'x', 't', 'e')", [row_id])
    for _ in range(PRUNE_EVERY):
        log.record("editor", "GET /api/tags")
    ids = [r[0] for r in store.db.execute("SELECT id FROM api_access ORDER BY id").fetchall()]
    assert ids[0] == KEEP_ROWS * 2 and len(ids) == PRUNE_EVERY + 1  # the old one went, the newest stay
