"""SECURITY.md claims that prose alone used to back: each checked against the real store and API code.

Argon2id parameters and their binding into the key file's AEAD, bounded costs in a tampered key file,
`temp_store=MEMORY`, the API token's constant-time comparison, and a locked keychain when an existing store
is opened.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import keyring.errors
import pytest

from storage import keys, paths
from storage.errors import KnownError
from storage.store import Store

_HELPERS = Path(__file__).parents[1] / "fixtures" / "store_helpers.py"
_spec = importlib.util.spec_from_file_location("store_helpers", _HELPERS)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def _edit_key_file(edit) -> None:  # type: ignore[no-untyped-def]
    record = json.loads(paths.key_file().read_text())
    edit(record)
    paths.key_file().write_text(json.dumps(record))


def test_argon2id_parameters_are_the_documented_ones(store: Store) -> None:
    kdf = json.loads(paths.key_file().read_text())["kdf"]
    assert kdf["name"] == "argon2id"
    assert (kdf["memory_cost"], kdf["time_cost"], kdf["parallelism"]) == (64 * 1024, 3, 4)  # 64 MiB, t=3, p=4
    assert len(keys._unb64(kdf["salt"])) == 16


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["kdf"].update(note="harmless?"),  # changes nothing Argon2 reads: only the AAD catches it
        lambda r: r.update(aead="AES-256-GCM "),
        lambda r: r.update(version=r["version"]),  # control: an unchanged header still opens (below)
    ],
    ids=["kdf-field", "cipher-name", "unchanged"],
)
def test_key_file_header_is_bound_into_the_aead(store: Store, hearth_home: Path, edit) -> None:  # type: ignore[no-untyped-def]
    store.close()
    before = json.loads(paths.key_file().read_text())
    _edit_key_file(edit)
    if json.loads(paths.key_file().read_text()) == before:
        Store.open().close()
        return
    with pytest.raises(KnownError, match="passphrase"):
        Store.open()


@pytest.mark.parametrize("field,value", [("memory_cost", 2**32 - 1), ("parallelism", 10_000), ("time_cost", 0)])
def test_tampered_argon2_costs_are_refused_before_deriving(store: Store, field: str, value: int) -> None:
    """A key file demanding 4 TiB of memory (or hours of work) is refused at once, not attempted."""
    store.close()
    _edit_key_file(lambda r: r["kdf"].update({field: value}))
    with pytest.raises(KnownError, match="Argon2 costs outside Hearth's limits"):
        Store.open()


def test_temp_store_is_memory_on_every_connection(store: Store) -> None:
    """Sorts and temp tables never spill to (unencrypted) temp files."""
    assert store.db.execute("PRAGMA temp_store").fetchone()[0] == 2  # 2 = MEMORY
    store.rekey()  # the connection re-opened under the new key is tuned the same
    assert store.db.execute("PRAGMA temp_store").fetchone()[0] == 2


def test_api_token_is_compared_in_constant_time(api_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Every request's token is hashed and checked with `secrets.compare_digest` against every client, never `==`."""
    import secrets

    from storage import clients

    seen: list[tuple[bytes, bytes]] = []
    real = secrets.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(clients.secrets, "compare_digest", recording)
    server = api_server()
    for token in ("hearth-wrong-guess", "h"):
        response = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 401
    presented = [a for a, _ in seen]
    assert clients.hash_token("hearth-wrong-guess").encode() in presented
    assert clients.hash_token("h").encode() in presented


class LockedKeyring(helpers.FileKeyring):
    """A keychain that exists and holds the key, but is locked (the user has not unlocked their session)."""

    locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise keyring.errors.KeyringLocked("locked")
        return super().get_password(service, username)


@pytest.fixture
def locked_keyring(tmp_path: Path) -> Iterator[LockedKeyring]:
    previous = keyring.get_keyring()
    backend = LockedKeyring(tmp_path / "keychain.json")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_a_locked_keychain_is_a_clear_error_and_changes_nothing(
    locked_keyring: LockedKeyring, hearth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEARTH_KEYRING", raising=False)
    with Store.open() as store:
        assert store.custody == "keyring"
        store.chats.create("kept")
    locked_keyring.locked = True
    before = helpers.snapshot(hearth_home)
    monkeypatch.setenv("HEARTH_PASSPHRASE", "a passphrase that must not be used")  # no fallback to a new key
    with pytest.raises(KnownError, match=r"keychain refused .* unlock it"):
        Store.open()
    assert helpers.snapshot(hearth_home) == before
    locked_keyring.locked = False
    with Store.open() as store:
        assert [c["title"] for c in store.chats.list()] == ["kept"]


def test_a_rotated_token_takes_effect_on_the_running_server(api_server, store: Store) -> None:  # type: ignore[no-untyped-def]
    """The app's server (the Settings toggle) switches tokens without a restart; the old one gets 401."""
    from storage.clients import DEFAULT_CLIENT, Clients

    server = api_server()
    old = server.token

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{server.base_url}/models", headers=headers, timeout=30).status_code

    assert status(old) == 200
    new = Clients(store.settings).rotate(DEFAULT_CLIENT)
    assert status(old) == 401
    assert status(new) == 200
