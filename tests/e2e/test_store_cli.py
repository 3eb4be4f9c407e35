"""`hearth history / rekey / passphrase` as a user runs them: a subprocess with a real encrypted store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from storage.store import Store

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

ROOT = Path(__file__).parents[2]


def _seed(store: Store) -> int:
    conversation = store.chats.create("Bread questions")
    store.chats.add_message(conversation, "user", "How long do I proof sourdough overnight?")
    store.chats.add_message(conversation, "assistant", "About twelve hours in the fridge.")
    store.chats.create("Empty one")
    store.close()
    return conversation


def test_history_list_and_search(hearth: Cli, store: Store) -> None:
    conversation = _seed(store)
    listed = hearth("history")
    assert listed.returncode == 0, listed.stderr
    assert "Bread questions" in listed.stdout and "Empty one" in listed.stdout

    as_json = json.loads(hearth("history", "--json").stdout)
    bread = next(c for c in as_json if c["id"] == conversation)
    assert bread["message_count"] == 2

    found = hearth("history", "--search", "sourdough")
    assert found.returncode == 0, found.stderr
    assert f"{conversation}" in found.stdout and "[sourdough]" in found.stdout
    partial = hearth("history", "--search", "ourdo")  # part of a word: the snippet shows it whole
    assert "[sourdough]" in partial.stdout, partial.stdout
    hits = json.loads(hearth("history", "--search", "twelve hours", "--json").stdout)
    assert [h["conversation_id"] for h in hits] == [conversation]
    assert hearth("history", "--search", "no such words here").stdout == ""


def test_export_one_conversation_as_markdown_and_json(hearth: Cli, store: Store, tmp_path: Path) -> None:
    conversation = _seed(store)
    markdown = hearth("export", str(conversation))
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# Bread questions") and "About twelve hours in the fridge." in markdown.stdout
    out = tmp_path / "bread.json"
    assert hearth("export", str(conversation), "--format", "json", "-o", str(out)).returncode == 0
    data = json.loads(out.read_text("utf-8"))
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    missing = hearth("export", "9999")
    assert missing.returncode == 1 and missing.stderr.startswith("hearth: "), missing.stderr


def test_wrong_passphrase_is_one_line(hearth: Cli, store: Store) -> None:
    _seed(store)
    result = hearth("history", env={"HEARTH_PASSPHRASE": "not the passphrase"})
    assert result.returncode == 1
    assert result.stderr.strip() == "hearth: wrong passphrase"


def test_passphrase_change_then_rekey(hearth: Cli, store: Store) -> None:
    _seed(store)
    changed = hearth("passphrase", env={"HEARTH_NEW_PASSPHRASE": "brand new passphrase"})
    assert changed.returncode == 0, changed.stderr
    assert hearth("history").returncode == 1  # the old one (still in HEARTH_PASSPHRASE) no longer works
    new = {"HEARTH_PASSPHRASE": "brand new passphrase"}
    rekeyed = hearth("rekey", env=new)
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "Bread questions" in hearth("history", env=new).stdout
