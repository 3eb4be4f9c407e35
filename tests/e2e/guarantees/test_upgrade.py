"""Upgrade: a store written at schema v1 (tests/fixtures/v1_store.db) opens through the CLI with every chat.

The fixture is an encrypted v1 database; its key is wrapped here under a passphrase, as an old install's
key file would hold it. The first command migrates it (after an encrypted backup) and lists the chats.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import guarantee_kit as kit

FIXTURES = kit.ROOT / "tests" / "fixtures"


def _v1():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_v1_store", FIXTURES / "make_v1_store.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_v1_store_upgrades_with_all_chats_through_the_cli(tmp_path: Path) -> None:
    from storage import keys

    v1 = _v1()
    sb = kit.Sandbox(tmp_path / "world")
    shutil.copy(v1.FIXTURE, sb.home / "hearth.db")
    keys.PassphraseCustody.create(sb.home / "key.json", v1.V1_KEY, sb.passphrase)

    listed = json.loads(sb.ok("history", "--json").stdout)
    by_title = {c["title"]: c for c in listed}
    assert set(by_title) == {title for title, _, _ in v1.V1_CONVERSATIONS}
    for title, _system, messages in v1.V1_CONVERSATIONS:
        assert by_title[title]["message_count"] == len(messages), title
    hits = json.loads(sb.ok("history", "--search", "sourdough", "--json").stdout)
    assert [h["title"] for h in hits] == ["Recipe"]

    with sb.store() as store:
        assert store.integrity_check() == ["ok"]
        for title, system_prompt, messages in v1.V1_CONVERSATIONS:
            conv = by_title[title]
            assert store.chats.get(conv["id"]).get("system_prompt") == system_prompt
            assert [(m["role"], m["content"]) for m in store.chats.messages(conv["id"])] == messages
    backups = sorted((sb.home / "backups").iterdir())
    assert [b.name.startswith("hearth-schema1-") for b in backups] == [True]
    assert kit.files_starting_with([sb.home], b"SQLite format 3\x00") == []
    assert kit.leaks([sb.home, sb.tmp], "How long do I bake sourdough?") == []  # the backup is encrypted too
