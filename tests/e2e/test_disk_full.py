"""A full disk during ingest, chat and a training checkpoint: one clear sentence, and the store stays intact.

HEARTH_HOME lives on a small tmpfs (real ENOSPC, which SQLite reports as SQLITE_FULL); afterwards the tmpfs
is grown and the store must open with everything saved before the disk filled, and pass its integrity check.
Mounting needs root (CI runs as root); elsewhere the test skips, under CI=true it fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from personalize.registry import Registry
from storage.errors import KnownError
from storage.store import Store

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

SENTENCE = "hearth: the disk is full, so this was not saved (everything saved before is intact)"


@pytest.fixture
def small_disk(hearth_home: Path) -> Iterator[Path]:
    """This test's HEARTH_HOME on a 3 MiB tmpfs (requested before `store`, which then copies the store in)."""
    cache = next((hearth_home / "cache").iterdir())
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(hearth_home)], capture_output=True
    )
    if done.returncode:
        reason = f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        (hearth_home / "cache").mkdir(mode=0o700)
        (hearth_home / "cache" / cache.name).symlink_to(cache.resolve(), target_is_directory=True)
        yield hearth_home
    finally:
        subprocess.run(["umount", "-l", str(hearth_home)], check=True)


def _one_sentence(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(SENTENCE), result.stderr


def test_a_full_disk_is_one_sentence_and_loses_nothing(
    small_disk: Path, store: Store, hearth: Cli, tmp_path: Path
) -> None:
    conversation = store.chats.create("before the disk filled")
    store.chats.add_message(conversation, "user", "kept")
    Registry(store).save_checkpoint(b"checkpoint v1" * 1000)
    store.close()
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(10):  # ~4 MB of text plus its index: more than the 3 MiB disk holds
        words = " ".join(f"w{i}x{j}" for j in range(40_000))
        (notes / f"note-{i:02}.txt").write_text(f"Note {i}.\n\n{words}\n")
    _one_sentence(hearth("add", str(notes)))  # ingest fills the disk
    _one_sentence(hearth("ask", "Hello?"))  # a chat on the full disk

    with (
        Store.open() as store,
        pytest.raises(KnownError, match="the disk is full"),
    ):  # a training checkpoint on the full disk
        Registry(store).save_checkpoint(os.urandom(4 << 20))
    assert not [p.name for p in (small_disk / "blobs").iterdir() if p.name.endswith(".tmp")]

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    with Store.open() as store:
        assert store.integrity_check() == ["ok"]
        assert [c["title"] for c in store.chats.list()][-1] == "before the disk filled"
        assert Registry(store).checkpoint() == b"checkpoint v1" * 1000
        indexed = store.db.execute("SELECT count(*) FROM doc_files").fetchone()[0]
        assert 0 < indexed < 10  # the notes that fitted, each whole
        chunks = store.db.execute("SELECT count(*) FROM doc_chunks").fetchone()[0]
        assert chunks == store.db.execute("SELECT count(*) FROM doc_chunks_fts").fetchone()[0]
