"""Upgrading a schema-v1 database (tests/fixtures/v1_store.db) keeps every chat and backs it up encrypted."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from sqlite_utils import Database

from storage import db as dbmod
from storage import keys, migrations, paths
from storage.errors import KnownError
from storage.store import Store

FIXTURES = Path(__file__).parents[1] / "fixtures"
_spec = importlib.util.spec_from_file_location("make_v1_store", FIXTURES / "make_v1_store.py")
v1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v1)
_hspec = importlib.util.spec_from_file_location("store_helpers", FIXTURES / "store_helpers.py")
helpers = importlib.util.module_from_spec(_hspec)
_hspec.loader.exec_module(helpers)

PASSPHRASE = "fixture passphrase"


@pytest.fixture
def v1_home(hearth_home: Path) -> Path:
    shutil.copy(v1.FIXTURE, paths.database())
    keys.PassphraseCustody.create(paths.key_file(), v1.V1_KEY, PASSPHRASE)
    return hearth_home


def test_fixture_is_schema_v1() -> None:
    conn = dbmod.connect(Path(shutil.copy(v1.FIXTURE, paths.home() / "probe.db")), v1.V1_KEY)
    assert migrations.schema_version(Database(conn)) == 1
    conn.close()


def test_upgrade_from_v1_keeps_every_chat(v1_home: Path) -> None:
    with Store.open(PASSPHRASE) as store:
        assert migrations.schema_version(store.db) == len(migrations.MIGRATIONS)
        conversations = store.chats.list()
        assert [c["title"] for c in conversations] != []
        found = {c["title"]: c for c in conversations}
        for title, system_prompt, messages in v1.V1_CONVERSATIONS:
            assert found[title]["system_prompt"] == system_prompt
            stored = store.chats.messages(found[title]["id"])
            assert [(m["role"], m["content"]) for m in stored] == messages
            assert all(m["status"] == "complete" for m in stored)
        hits = store.chats.search("sourdough")  # indexed by v1's triggers, still found
        assert [h["title"] for h in hits] == ["Recipe"]
        reply = store.chats.add_message(found["Recipe"]["id"], "assistant", "", status="streaming")
        store.chats.append_to_message(reply, "Check the crumb.")
        assert store.chats.search("crumb")[0]["message_id"] == reply
        assert store.integrity_check() == ["ok"]

    backups = sorted((v1_home / "backups").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("hearth-schema1-")
    assert helpers.files_containing(v1_home / "backups", "sourdough") == []
    conn = dbmod.connect(backups[0], v1.V1_KEY)
    backup = Database(conn)
    assert migrations.schema_version(backup) == 1
    assert backup.execute("SELECT count(*) FROM messages").fetchone()[0] == 4
    conn.close()

    with Store.open(PASSPHRASE):  # nothing pending: no second backup
        pass
    assert len(list((v1_home / "backups").iterdir())) == 1


def test_newer_schema_is_refused(v1_home: Path) -> None:
    conn = dbmod.connect(paths.database(), v1.V1_KEY)
    conn.execute(f"PRAGMA user_version = {len(migrations.MIGRATIONS) + 5}")
    conn.commit()
    conn.close()
    before = helpers.snapshot(v1_home)
    with pytest.raises(KnownError, match="newer Hearth"):
        Store.open(PASSPHRASE)
    assert helpers.snapshot(v1_home) == before


def test_failed_migration_rolls_back(v1_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: Database) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        Store.open(PASSPHRASE)
    conn = dbmod.connect(paths.database(), v1.V1_KEY)
    db = Database(conn)
    assert migrations.schema_version(db) == len(migrations.MIGRATIONS) - 1
    assert not db["half_done"].exists()
    conn.close()


def test_backups_are_complete_or_absent_and_pruned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup appears under its final name only once complete; only the newest KEEP_BACKUPS stay."""
    import time

    from storage import store as store_mod

    def export_then_crash(conn, dest, key, extra_sql=()):  # type: ignore[no-untyped-def]
        dest.write_bytes(b"\0" * 4096)
        raise OSError("disk went away")

    with monkeypatch.context() as patch:
        patch.setattr(dbmod, "export", export_then_crash)
        with pytest.raises(OSError):
            store._backup(3)
    assert list(paths.backups().iterdir()) == []  # neither a partial copy nor one under the final name
    made = []
    for _ in range(store_mod.KEEP_BACKUPS + 2):
        made.append(store._backup(3))
        time.sleep(0.01)  # distinct mtimes
    assert store_mod.backups() == made[-store_mod.KEEP_BACKUPS :]
    assert sorted(paths.backups().iterdir()) == sorted(made[-store_mod.KEEP_BACKUPS :])


def test_rekey_removes_backups_under_the_old_key_and_says_so(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    old_key = store._key
    backup = store._backup(3)
    dbmod.connect(backup, old_key).close()  # opens under the old key
    store.close()
    from desktop.cli import main

    assert main(["rekey"]) == 0
    assert "removed 1 pre-upgrade backup(s) encrypted under the old key" in capsys.readouterr().out
    assert not backup.exists() and list(paths.backups().iterdir()) == []
