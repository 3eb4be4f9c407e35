"""No plaintext on disk; every bad key or file is a clear error that changes nothing."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from pathlib import Path

import pytest

from storage import db as dbmod
from storage import keys, paths
from storage.errors import KnownError
from storage.store import Store

_HELPERS = Path(__file__).parents[1] / "fixtures" / "store_helpers.py"
_spec = importlib.util.spec_from_file_location("store_helpers", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

CANARY = "hearth-canary-7f3a9c-Ünïcode-雪"


def test_canary_never_on_disk_but_searchable(store: Store, hearth_home: Path) -> None:
    conversation = store.chats.create("notes")
    store.chats.add_message(conversation, "user", f"remember {CANARY} please")
    reply = store.chats.add_message(conversation, "assistant", "", status="streaming")
    for piece in ("I will remember ", CANARY, "."):
        store.chats.append_to_message(reply, piece)
    store.chats.finish_message(reply)
    store.settings.set("note", CANARY)
    store.blobs.put("adapter", (CANARY * 1000).encode())
    store.blobs.put("checkpoint", CANARY.encode("utf-16-le") * 1000)
    with store.blobs.plaintext_path("adapter") as path:
        assert CANARY in path.read_text()
    store._backup(3)  # an encrypted backup, as taken before a migration

    assert (hearth_home / "hearth.db-wal").exists(), "the WAL must be scanned while it holds the writes"
    assert helpers.files_containing(hearth_home, CANARY) == []
    hits = store.chats.search(CANARY)
    assert {hit["message_id"] for hit in hits} == {reply, reply - 1}
    store.close()
    assert helpers.files_containing(hearth_home, CANARY) == []
    assert sorted(p.name for p in (hearth_home / "backups").iterdir())  # the backup was scanned too


def test_canary_scanner_finds_plaintext(hearth_home: Path) -> None:
    """Control: the scanner does see each encoding, so a zero above means something."""
    hearth_home.mkdir(parents=True, exist_ok=True)
    for i, form in enumerate(helpers.canary_forms(CANARY)):
        (hearth_home / f"leak{i}").write_bytes(b"xx" + form + b"yy")
    assert len(helpers.files_containing(hearth_home, CANARY)) == 3


def test_files_are_private(store: Store, hearth_home: Path) -> None:
    store.blobs.put("a", b"x")
    store.chats.create("t")
    for path in [hearth_home, *hearth_home.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == expected, path


def test_wrong_passphrase_changes_nothing(store: Store, hearth_home: Path) -> None:
    store.chats.create("kept")
    store.close()
    before = helpers.snapshot(hearth_home)
    with pytest.raises(KnownError, match=r"^wrong passphrase$"):
        Store.open("not the passphrase")
    assert helpers.snapshot(hearth_home) == before
    with Store.open() as reopened:  # the right one (HEARTH_PASSPHRASE) still works
        assert [c["title"] for c in reopened.chats.list()] == ["kept"]


def test_database_from_another_key(store: Store, hearth_home: Path, tmp_path: Path) -> None:
    store.close()
    other = tmp_path / "other.db"
    dbmod.connect(other, bytes(32)).close()
    shutil.copy(other, paths.database())
    before = helpers.snapshot(hearth_home)
    with pytest.raises(KnownError, match=r"does not open hearth.db") as raised:
        Store.open()
    assert "Traceback" not in str(raised.value)
    assert helpers.snapshot(hearth_home) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some notes\n" * 10, "not a Hearth database"),
        (b"\x00" * 8192, "does not open hearth.db"),  # page-sized garbage: cannot tell it from another key
    ],
)
def test_non_database_file(store: Store, hearth_home: Path, content: bytes, message: str) -> None:
    store.close()
    paths.database().write_bytes(content)
    for suffix in ("-wal", "-shm"):
        Path(str(paths.database()) + suffix).unlink(missing_ok=True)
    before = helpers.snapshot(hearth_home)
    with pytest.raises(KnownError, match=message):
        Store.open()
    assert helpers.snapshot(hearth_home) == before


def test_plain_sqlite_database_is_refused(store: Store, hearth_home: Path) -> None:
    store.close()
    paths.database().unlink()
    sqlite3.connect(paths.database()).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(KnownError, match="unencrypted SQLite database"):
        Store.open()


def test_existing_database_without_key_file_is_not_a_first_run(store: Store, hearth_home: Path) -> None:
    store.close()
    paths.key_file().unlink()
    before = helpers.snapshot(hearth_home)
    with pytest.raises(KnownError, match=r"key file key.json is missing"):
        Store.open()
    assert helpers.snapshot(hearth_home) == before
    assert not paths.key_file().exists()


def test_no_passphrase_anywhere_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    with pytest.raises(KnownError, match="HEARTH_PASSPHRASE"):
        Store.open()
    assert not paths.database().exists() and not paths.key_file().exists()


def test_callable_passphrase_is_told_first_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    calls: list[bool] = []

    def ask(first_run: bool) -> str:
        calls.append(first_run)
        return "a long enough passphrase"

    Store.open(ask).close()
    Store.open(ask).close()
    assert calls == [True, False]
    assert Store.open("a long enough passphrase").custody == "passphrase"


def test_short_passphrase_is_refused_on_first_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    with pytest.raises(KnownError, match="too short"):
        Store.open("short")
    assert not paths.key_file().exists()


def test_key_file_holds_no_key(store: Store) -> None:
    record = keys.read_record(paths.key_file())
    assert record is not None and record["custody"] == "passphrase"
    assert store._key.hex() not in paths.key_file().read_text()
