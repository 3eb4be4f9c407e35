"""Encrypted blob files: round trips, tamper and truncation detection, plaintext_path hygiene."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from storage import blobs as blobs_mod
from storage import paths
from storage.errors import KnownError
from storage.store import Store


def _only_file() -> Path:
    files = [p for p in paths.blobs().iterdir() if p.is_file()]
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("size", [0, 1, blobs_mod.CHUNK, blobs_mod.CHUNK + 1, 3 * blobs_mod.CHUNK - 7])
def test_round_trip(store: Store, size: int) -> None:
    data = os.urandom(size)
    store.blobs.put("artefact", data)
    assert store.blobs.get("artefact") == data
    assert _only_file().stat().st_size > size


def test_replace_and_delete_leave_no_stale_files(store: Store, tmp_path: Path) -> None:
    store.blobs.put("a", b"one")
    source = tmp_path / "adapter.bin"
    source.write_bytes(b"two" * 1000)
    store.blobs.put_file("a", source)
    assert store.blobs.get("a") == b"two" * 1000
    _only_file()
    assert [b["name"] for b in store.blobs.list()] == ["a"]
    store.blobs.delete("a")
    assert list(paths.blobs().iterdir()) == []
    assert not store.blobs.exists("a")
    with pytest.raises(KnownError, match="no stored artefact"):
        store.blobs.get("a")


def test_tampering_is_detected(store: Store) -> None:
    store.blobs.put("a", b"x" * 5000)
    path = _only_file()
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(KnownError, match="damaged or was tampered"):
        store.blobs.get("a")


def test_truncation_at_a_chunk_boundary_is_detected(store: Store) -> None:
    store.blobs.put("a", b"y" * (2 * blobs_mod.CHUNK + 10))
    path = _only_file()
    header = blobs_mod._HEADER.size
    path.write_bytes(path.read_bytes()[: header + 2 * (blobs_mod.CHUNK + 16)])
    with pytest.raises(KnownError, match="damaged"):
        store.blobs.get("a")


def test_swapped_files_are_detected(store: Store) -> None:
    store.blobs.put("a", b"aaa")
    store.blobs.put("b", b"bbb")
    rows = dict(store.db.execute("SELECT name, file FROM blobs").fetchall())
    a, b = paths.blobs() / rows["a"], paths.blobs() / rows["b"]
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    with pytest.raises(KnownError, match="damaged"):
        store.blobs.get("a")


def test_plaintext_path_on_linux_is_a_memfd(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("memfd is Linux only")
    with blobs_mod.plaintext_path(b"secret weights") as path:
        assert str(path).startswith("/proc/self/fd/")
        assert path.read_bytes() == b"secret weights"
        assert "memfd:" in os.readlink(path)
    assert not path.exists()


def test_plaintext_path_fallback_deletes_its_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("TMPDIR", str(temp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with blobs_mod.plaintext_path(b"secret weights") as path:
        assert path.parent == temp
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes() == b"secret weights"
    assert list(temp.iterdir()) == []


def test_blob_plaintext_path_from_store(store: Store) -> None:
    store.blobs.put("adapter", b"lora")
    with store.blobs.plaintext_path("adapter") as path:
        assert path.read_bytes() == b"lora"


def test_orphan_files_are_removed_once_old(store: Store) -> None:
    orphan = paths.blobs() / "0123456789abcdef"
    orphan.write_bytes(b"ciphertext of a crashed write")
    assert store.blobs.remove_orphans() == 0  # might belong to another process mid-write
    os.utime(orphan, (0, 0))
    assert store.blobs.remove_orphans() == 1
    assert not orphan.exists()
