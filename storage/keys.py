"""Custody of the database key: the OS keychain when a real one works, else a passphrase-wrapped key file.

The database key is 32 random bytes, never derived from anything the user types, so changing the
passphrase re-wraps 32 bytes instead of re-encrypting the database (Signal Desktop's design).

- `keyring` custody: the key lives in the OS keychain (service "Hearth", one account per data dir);
  `key.json` only records that fact, so an existing database is never mistaken for a first run.
- `passphrase` custody: `key.json` holds the key wrapped with AES-256-GCM under a key derived from the
  passphrase by Argon2id (64 MiB, t=3, p=4: ~0.2 s on a laptop). The parameters and salt are in the file
  and bound into the AEAD's associated data, so tampering with them fails like a wrong passphrase.

Keychain backends that would keep the key in plaintext or nowhere (keyring's fail/null backends, an empty
chainer, anything from keyrings.alt) are refused. `HEARTH_KEYRING=0` forces passphrase custody on first
run (headless machines, tests). A key rotation (`Store.rekey`) stores the new key as *pending* next to the
current one before touching the database, so a crash at any point leaves a key that opens it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from storage.errors import KnownError

KEY_BYTES = 32
FILE_VERSION = 1
KEYRING_SERVICE = "Hearth"
MIN_PASSPHRASE = 8
# Argon2id cost: OWASP's "m=64 MiB" tier; ~0.2 s per unlock on a 2020s laptop core. Stored per file, so a
# later release can raise it on the next passphrase change without breaking old files.
ARGON2 = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
# What a key file may ask for, inclusive: a tampered file must not make an unlock allocate gigabytes or spin
# for hours before its AEAD check can fail. Generous, so a later release can still raise the cost.
ARGON2_LIMITS = {"time_cost": (1, 64), "memory_cost": (8 * 1024, 4 * 1024 * 1024), "parallelism": (1, 64)}

PassphraseSource = str | Callable[[bool], str] | None


class WrongPassphrase(KnownError):
    def __init__(self) -> None:
        super().__init__("wrong passphrase")


# --------------------------------------------------------------------------------------------------
# Keychain backend selection
# --------------------------------------------------------------------------------------------------


def keyring_wanted() -> bool:
    """`HEARTH_KEYRING=0` (or false/no/off) forces passphrase custody for a new store."""
    return os.environ.get("HEARTH_KEYRING", "1").strip().lower() not in ("0", "false", "no", "off")


def secure_keyring() -> Any | None:
    """The keychain backend to trust with the key, or None when only insecure or failing ones exist.

    A chainer is resolved to its first secure member: used as is, it would silently fall through to a
    plaintext backend when the real keychain is locked.
    """
    try:
        import keyring
    except ImportError:  # keyring is a dependency, but custody must still work without it
        return None
    backend = keyring.get_keyring()
    from keyring.backends import chainer

    candidates = list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    for candidate in candidates:
        if _is_secure(candidate):
            return candidate
    return None


def _is_secure(backend: Any) -> bool:
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring | chainer.ChainerBackend):
        return False
    if type(backend).__module__.startswith("keyrings.alt"):  # plaintext or self-made file crypto
        return False
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend whose priority property raises is not viable (keyring's own rule)
        return False


# --------------------------------------------------------------------------------------------------
# Key file
# --------------------------------------------------------------------------------------------------


def read_record(path: Path) -> dict[str, Any] | None:
    """The parsed key file, or None when there is none. A damaged file is a KnownError, never 'first run'."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
        if not isinstance(record, dict) or record.get("version") != FILE_VERSION:
            raise ValueError
        if record.get("custody") not in ("keyring", "passphrase"):
            raise ValueError
    except ValueError:
        raise KnownError(
            f"the key file {path.name} is damaged or from a newer Hearth: restore it from a backup"
        ) from None
    return record


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Atomic and durable: temp file 0600 in the same dir, fsync, rename, fsync the dir."""
    data = json.dumps(record, indent=2, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    if os.name != "posix":  # Windows cannot open a directory; NTFS renames are journaled
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --------------------------------------------------------------------------------------------------
# Custodies
# --------------------------------------------------------------------------------------------------


class KeyringCustody:
    """The key in the OS keychain; the key file names the account."""

    kind = "keyring"

    def __init__(self, path: Path, record: dict[str, Any], backend: Any) -> None:
        self._path, self._record, self._backend = path, record, backend

    @classmethod
    def create(cls, path: Path, key: bytes) -> KeyringCustody | None:
        """Store a new key in the keychain; None when no secure keychain takes it (caller falls back)."""
        if not keyring_wanted():
            return None
        backend = secure_keyring()
        if backend is None:
            return None
        account = f"database-key-{uuid.uuid4().hex}"
        try:
            backend.set_password(KEYRING_SERVICE, account, key.hex())
            if backend.get_password(KEYRING_SERVICE, account) != key.hex():
                return None
        except Exception:  # locked, denied, D-Bus gone: any failure means "not usable here"
            return None
        record = {"version": FILE_VERSION, "custody": "keyring", "service": KEYRING_SERVICE, "account": account}
        write_record(path, record)
        return cls(path, record, backend)

    @classmethod
    def load(cls, path: Path, record: dict[str, Any]) -> tuple[KeyringCustody, bytes, bytes | None]:
        backend = secure_keyring()
        if backend is None:
            raise KnownError(
                "the database key is kept in the OS keychain, but no usable keychain is available: "
                "unlock or start your keychain and try again"
            )
        custody = cls(path, record, backend)
        current = custody._get(record["account"])
        if current is None:
            raise KnownError(
                "the database key is missing from the OS keychain (service Hearth): restore the keychain "
                "entry; Hearth will not make a new key for an existing database"
            )
        pending = custody._get(record["account"] + "-pending") if record.get("pending") else None
        return custody, current, pending

    def _get(self, account: str) -> bytes | None:
        try:
            value = self._backend.get_password(self._record.get("service", KEYRING_SERVICE), account)
        except Exception:
            raise KnownError("the OS keychain refused to give the database key: unlock it and try again") from None
        if value is None:
            return None
        try:
            key = bytes.fromhex(value)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise KnownError("the database key in the OS keychain is damaged")
        return key

    def _set(self, account: str, key: bytes) -> None:
        service = self._record.get("service", KEYRING_SERVICE)
        try:
            self._backend.set_password(service, account, key.hex())
        except Exception:
            raise KnownError("the OS keychain refused to store the database key: unlock it and try again") from None

    def set_pending(self, key: bytes) -> None:
        self._set(self._record["account"] + "-pending", key)
        self._record = {**self._record, "pending": True}
        write_record(self._path, self._record)

    def promote_pending(self, key: bytes) -> None:
        """The database now opens with `key`: make it current, then forget the pending copy."""
        self._set(self._record["account"], key)
        self.discard_pending()

    def discard_pending(self) -> None:
        self._record = {k: v for k, v in self._record.items() if k != "pending"}
        write_record(self._path, self._record)
        service = self._record.get("service", KEYRING_SERVICE)
        # Already gone, or the backend cannot delete: what is left is a stale copy of a valid key.
        with contextlib.suppress(Exception):
            self._backend.delete_password(service, self._record["account"] + "-pending")

    def change_passphrase(self, key: bytes, new_passphrase: str) -> None:
        raise KnownError("this store's key is kept in the OS keychain: there is no passphrase to change")


class PassphraseCustody:
    """The key wrapped under an Argon2id-derived key; the derived key stays in memory while the store is open."""

    kind = "passphrase"

    def __init__(self, path: Path, record: dict[str, Any], kek: bytes) -> None:
        self._path, self._record, self._kek = path, record, kek

    @classmethod
    def create(cls, path: Path, key: bytes, passphrase: str) -> PassphraseCustody:
        check_new_passphrase(passphrase)
        record, kek = _new_kdf_record(passphrase)
        record["wrapped"] = _wrap(kek, record, key)
        write_record(path, record)
        return cls(path, record, kek)

    @classmethod
    def load(cls, path: Path, record: dict[str, Any], passphrase: str) -> tuple[PassphraseCustody, bytes, bytes | None]:
        try:
            kek = _derive(passphrase, record["kdf"])
            current = _unwrap(kek, record, record["wrapped"])
            pending = _unwrap(kek, record, record["pending"]) if "pending" in record else None
        except (KeyError, TypeError, ValueError):
            raise KnownError(f"the key file {path.name} is damaged: restore it from a backup") from None
        return cls(path, record, kek), current, pending

    def set_pending(self, key: bytes) -> None:
        self._record = {**self._record, "pending": _wrap(self._kek, self._record, key)}
        write_record(self._path, self._record)

    def promote_pending(self, key: bytes) -> None:
        record = {k: v for k, v in self._record.items() if k != "pending"}
        record["wrapped"] = _wrap(self._kek, record, key)
        self._record = record
        write_record(self._path, record)

    def discard_pending(self) -> None:
        self._record = {k: v for k, v in self._record.items() if k != "pending"}
        write_record(self._path, self._record)

    def change_passphrase(self, key: bytes, new_passphrase: str) -> None:
        """New salt, new derived key, same database key: one atomic write of the key file."""
        check_new_passphrase(new_passphrase)
        record, kek = _new_kdf_record(new_passphrase)
        record["wrapped"] = _wrap(kek, record, key)
        write_record(self._path, record)
        self._record, self._kek = record, kek


Custody = KeyringCustody | PassphraseCustody


def check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KnownError(f"the passphrase is too short: use at least {MIN_PASSPHRASE} characters")


def env_passphrase() -> str | None:
    """HEARTH_PASSPHRASE (scripts, tests, the self-test), the one place it is read; None when unset or empty."""
    return os.environ.get("HEARTH_PASSPHRASE") or None


def resolve_passphrase(source: PassphraseSource, first_run: bool) -> str:
    """A string as is; a callable asked with first_run; None means HEARTH_PASSPHRASE or a clear error."""
    if callable(source):
        passphrase = source(first_run)
    elif source is not None:
        passphrase = source
    else:
        passphrase = env_passphrase() or ""
        if not passphrase:
            action = "choose" if first_run else "unlock with"
            raise KnownError(
                f"a passphrase is needed: no OS keychain is usable, so set HEARTH_PASSPHRASE to the passphrase "
                f"to {action}, or run Hearth from a terminal to be asked"
            )
    if not passphrase:
        raise KnownError("no passphrase was given")
    return passphrase


def _new_kdf_record(passphrase: str) -> tuple[dict[str, Any], bytes]:
    kdf = {"name": "argon2id", **ARGON2, "salt": _b64(secrets.token_bytes(16))}
    record: dict[str, Any] = {"version": FILE_VERSION, "custody": "passphrase", "kdf": kdf, "aead": "AES-256-GCM"}
    return record, _derive(passphrase, kdf)


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    if kdf.get("name") != "argon2id":
        raise ValueError("unknown kdf")
    cost = {name: int(kdf[name]) for name in ARGON2_LIMITS}
    if any(not low <= cost[name] <= high for name, (low, high) in ARGON2_LIMITS.items()):
        raise KnownError("the key file asks for Argon2 costs outside Hearth's limits: it was damaged or tampered with")
    return hash_secret_raw(passphrase.encode("utf-8"), _unb64(kdf["salt"]), hash_len=KEY_BYTES, type=Type.ID, **cost)


def _aad(record: dict[str, Any]) -> bytes:
    """Binds version, custody, cipher and every KDF parameter to the ciphertext."""
    header = {k: record[k] for k in ("version", "custody", "kdf", "aead")}
    return b"hearth-key-file\x00" + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _wrap(kek: bytes, record: dict[str, Any], key: bytes) -> dict[str, str]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    return {"nonce": _b64(nonce), "ciphertext": _b64(AESGCM(kek).encrypt(nonce, key, _aad(record)))}


def _unwrap(kek: bytes, record: dict[str, Any], wrapped: dict[str, str]) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        key = AESGCM(kek).decrypt(_unb64(wrapped["nonce"]), _unb64(wrapped["ciphertext"]), _aad(record))
    except InvalidTag:
        raise WrongPassphrase() from None
    if len(key) != KEY_BYTES:
        raise ValueError("bad key length")
    return key
