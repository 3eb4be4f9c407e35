"""`hearth clients` as a user runs it: named clients, scopes, the access log and the tokenless opt-in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.store import Store

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


def test_clients_add_list_rotate_revoke(hearth: Cli, store: Store) -> None:
    store.close()
    added = hearth("clients", "add", "notes-app", "--scopes", "chat,documents")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("hearth-")
    listed = hearth("clients", "list").stdout
    assert "notes-app" in listed and "chat,documents" in listed and "never" in listed
    assert token not in listed
    twice = hearth("clients", "add", "notes-app")
    assert twice.returncode == 1 and "exists" in twice.stderr
    rotated = hearth("clients", "rotate", "notes-app").stdout.strip()
    assert rotated.startswith("hearth-") and rotated != token
    assert hearth("clients", "revoke", "notes-app").returncode == 0
    assert "notes-app" not in hearth("clients", "list").stdout
    gone = hearth("clients", "revoke", "notes-app")
    assert gone.returncode == 1 and gone.stderr.strip() == (
        "hearth: no API client named 'notes-app' (see `hearth clients list`)"
    )


def test_bad_names_and_scopes_are_clear_errors(hearth: Cli, store: Store) -> None:
    store.close()
    scope = hearth("clients", "add", "x", "--scopes", "chat,admin")
    assert scope.returncode == 1 and "chat, embeddings, documents, chats" in scope.stderr
    assert "Traceback" not in scope.stderr
    name = hearth("clients", "add", "../etc")
    assert name.returncode == 1 and "client name" in name.stderr


def test_tokenless_ollama_is_off_until_turned_on(hearth: Cli, store: Store) -> None:
    store.close()
    assert hearth("clients", "ollama-tokenless", "status").stdout.strip() == "tokenless Ollama access is off"
    assert "tokenless" not in hearth("clients", "list").stdout
    assert hearth("clients", "ollama-tokenless", "on").stdout.strip() == "tokenless Ollama access is on"
    assert "tokenless Ollama access is ON" in hearth("clients", "list").stdout
    hearth("clients", "ollama-tokenless", "off")
    assert "tokenless" not in hearth("clients", "list").stdout
