"""Key custody end to end: keychain path, passphrase change, rekey and its crash recovery."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.backends.chainer import ChainerBackend

from storage import blobs as blobs_mod
from storage import db as dbmod
from storage import keys, paths
from storage.errors import KnownError
from storage.store import Store

STORE_PASSPHRASE = "test passphrase: correct horse battery staple"  # tests/conftest.py's
_HELPERS = Path(__file__).parents[1] / "fixtures" / "store_helpers.py"
_spec = importlib.util.spec_from_file_location("store_helpers", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture
def file_keyring(tmp_path: Path) -> Iterator[object]:
    previous = keyring.get_keyring()
    backend = helpers.FileKeyring(tmp_path / "keychain.json")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_keyring_custody(file_keyring: object, hearth_home: Path) -> None:
    with Store.open() as store:  # no passphrase anywhere: the keychain needs none
        assert store.custody == "keyring"
        conversation = store.chats.create("in keychain")
        key = store._key
    record = keys.read_record(paths.key_file())
    assert record is not None and record["custody"] == "keyring"
    assert key.hex() not in paths.key_file().read_text()
    assert key.hex() in file_keyring.path.read_text()
    with Store.open() as store:
        assert store.chats.get(conversation)["title"] == "in keychain"
        store.rekey()
        assert store._key != key
    with Store.open() as store:
        assert store.chats.get(conversation)["title"] == "in keychain"
        with pytest.raises(KnownError, match="keychain"):
            store.change_passphrase("a new passphrase")


def test_keyring_entry_lost_is_a_clear_error(file_keyring: object, hearth_home: Path) -> None:
    Store.open().close()
    file_keyring.path.unlink()
    before = helpers.snapshot(hearth_home)
    with pytest.raises(KnownError, match="missing from the OS keychain"):
        Store.open()
    assert helpers.snapshot(hearth_home) == before


def test_keyring_other_key_is_a_clear_error(file_keyring: object, hearth_home: Path) -> None:
    Store.open().close()
    record = keys.read_record(paths.key_file())
    file_keyring.set_password("Hearth", record["account"], "00" * 32)
    with pytest.raises(KnownError, match=r"database key in the OS keychain does not open hearth.db"):
        Store.open()


def _chainer(members: list[object]) -> ChainerBackend:
    """A chainer over given members (the real one discovers installed backends in a class property)."""
    chain_class = type("TestChainer", (ChainerBackend,), {"backends": members})
    return chain_class()


def _empty_chainer() -> ChainerBackend:
    return _chainer([])  # what keyring builds when no backend is viable


@pytest.mark.parametrize(
    "make_backend",
    [keyring.backends.fail.Keyring, keyring.backends.null.Keyring, _empty_chainer],
    ids=["fail", "null", "empty-chainer"],
)
def test_insecure_keyrings_fall_back_to_passphrase(make_backend: object) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(make_backend())
    try:
        assert keys.secure_keyring() is None
        with Store.open("fallback passphrase") as store:
            assert store.custody == "passphrase"
    finally:
        keyring.set_keyring(previous)


def test_plaintext_keyrings_alt_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plaintext = pytest.importorskip("keyrings.alt.file").PlaintextKeyring
    monkeypatch.setattr(plaintext, "file_path", str(tmp_path / "plain.cfg"))
    previous = keyring.get_keyring()
    keyring.set_keyring(plaintext())
    try:
        with Store.open("fallback passphrase") as store:
            assert store.custody == "passphrase"
        assert not (tmp_path / "plain.cfg").exists()
    finally:
        keyring.set_keyring(previous)


def test_chainer_is_resolved_to_its_secure_member(file_keyring: object) -> None:
    keyring.set_keyring(_chainer([keyring.backends.fail.Keyring(), file_keyring]))
    assert keys.secure_keyring() is file_keyring


def test_hearth_keyring_0_forces_passphrase(file_keyring: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    with Store.open("forced passphrase") as store:
        assert store.custody == "passphrase"
    assert not file_keyring.path.exists()


def test_change_passphrase(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = store.chats.create("kept")
    db_before = paths.database().read_bytes()
    store.change_passphrase("the new passphrase")
    store.close()
    assert paths.database().read_bytes()[:4096] == db_before[:4096]  # the database was not re-encrypted
    monkeypatch.delenv("HEARTH_PASSPHRASE")
    with pytest.raises(KnownError, match="wrong passphrase"):
        Store.open(STORE_PASSPHRASE)
    with Store.open("the new passphrase") as reopened:
        assert reopened.chats.get(conversation)["title"] == "kept"


def test_rekey_rotates_the_database_key(store: Store) -> None:
    conversation = store.chats.create("before rekey")
    store.chats.add_message(conversation, "user", "a findable sentence")
    store.blobs.put("adapter", b"weights" * 300_000)  # > 1 chunk
    old_key = store._key
    store.rekey()
    assert store._key != old_key
    store.blobs.put("after", b"new blob")
    store.close()
    with pytest.raises(dbmod.KeyDoesNotOpen):
        dbmod.connect(paths.database(), old_key)
    assert not Path(str(paths.database()) + ".rekey").exists()
    with Store.open() as reopened:
        assert reopened.chats.search("findable")[0]["conversation_id"] == conversation
        assert reopened.blobs.get("adapter") == b"weights" * 300_000
        assert reopened.blobs.get("after") == b"new blob"
        generations = dict(reopened.db.execute("SELECT name, generation FROM blobs").fetchall())
        assert generations == {"adapter": 1, "after": 2}  # new blobs use the rotated master key
        assert reopened.integrity_check() == ["ok"]


def test_rekey_interrupted_after_replacing_the_file_recovers(store: Store) -> None:
    """Crash between the file swap and promoting the key: open must find the pending key."""
    store.chats.create("survives")
    custody, conn = store._custody, store._conn
    new_key = bytes(range(32))
    custody.set_pending(new_key)
    tmp = Path(str(paths.database()) + ".rekey")
    dbmod.export(conn, tmp, new_key, [blobs_mod.new_generation_sql("target")])
    dbmod.checkpoint_and_close(conn)
    store._database = None
    store._lock.release()
    tmp.replace(paths.database())
    # -- "crash" here: key.json still has the old key as current and the new one as pending
    with Store.open() as reopened:
        assert [c["title"] for c in reopened.chats.list()] == ["survives"]
        assert reopened._key == new_key
    assert "pending" not in keys.read_record(paths.key_file())


def test_rekey_interrupted_before_replacing_the_file_recovers(store: Store) -> None:
    store.chats.create("survives")
    old_key = store._key
    store._custody.set_pending(bytes(range(32)))
    Path(str(paths.database()) + ".rekey").write_bytes(b"half-written copy")
    store.close()
    with Store.open() as reopened:
        assert [c["title"] for c in reopened.chats.list()] == ["survives"]
        assert reopened._key == old_key
    assert "pending" not in keys.read_record(paths.key_file())
    assert not Path(str(paths.database()) + ".rekey").exists()


def test_rekey_refused_while_another_process_has_the_store(store: Store) -> None:
    other = Store.open()
    try:
        with pytest.raises(KnownError, match="another Hearth process"):
            store.rekey()
    finally:
        other.close()
    store.chats.create("still usable")
