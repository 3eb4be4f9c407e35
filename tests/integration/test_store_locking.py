"""Two connections to one store, as two processes have them: writes wait for each other instead of failing.

Each test interleaves the two connections deterministically (the other connection writes at the worst
moment), so it fails on the code before issue 18: deferred `BEGIN`, the adapter list rewritten outside a
transaction, a lock at the key check reported as a wrong key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from personalize.registry import AdapterRecord, Registry
from storage import db as dbmod
from storage.errors import KnownError
from storage.store import Store
from storage.timeutil import now


@pytest.fixture
def other(store: Store) -> Iterator[Store]:
    """A second connection to the test's store (another process, as far as SQLite can tell)."""
    second = Store.open()
    yield second
    second.close()


def _record(adapter_id: str) -> AdapterRecord:
    return AdapterRecord(adapter_id, now(), "0" * 64, 10.0, 9.0, 100, 1)


def test_a_transaction_that_reads_then_writes_waits_for_another_writer(store: Store, other: Store) -> None:
    """`hearth add` replacing a file reads first; another process committing meanwhile must not crash it."""
    with store.db.atomic() as db:
        db.execute("SELECT count(*) FROM doc_files").fetchone()  # the read that used to pin a stale snapshot
        writer = threading.Thread(target=other.settings.set, args=("from the other process", 1))
        writer.start()
        writer.join(timeout=1)
        db.execute("INSERT INTO settings (key, value, updated) VALUES ('mine', '2', 'now')")
    writer.join()
    assert store.settings.get("from the other process") == 1 and store.settings.get("mine") == 2


def test_adapter_records_added_at_once_are_all_kept(store: Store, other: Store, monkeypatch) -> None:
    """Another process adds an adapter between this one reading the list and writing it back."""
    registry, registry_elsewhere = Registry(store), Registry(other)
    real_list = Registry.list
    racing: list[threading.Thread] = []

    def list_then_let_the_other_process_write(self: Registry) -> list[AdapterRecord]:
        records = real_list(self)
        if self is registry and not racing:
            racing.append(threading.Thread(target=registry_elsewhere.add, args=(b"gguf", {}, _record("theirs"))))
            racing[0].start()
            racing[0].join(timeout=2)  # finishes here unless this process holds the write lock
        return records

    monkeypatch.setattr(Registry, "list", list_then_let_the_other_process_write)
    registry.add(b"gguf", {}, _record("mine"))
    racing[0].join()
    monkeypatch.undo()
    assert {r.id for r in Registry(store).list()} == {"mine", "theirs"}


def test_a_store_locked_during_the_key_check_is_busy_not_a_wrong_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.db.execute("PRAGMA locking_mode = EXCLUSIVE")
    store.settings.set("hold", 1)  # an exclusive lock, kept until the connection closes
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 300)
    with pytest.raises(KnownError, match="busy in another Hearth process"):
        Store.open()
    store.close()
    with Store.open() as reopened:  # released: it opens
        assert reopened.settings.get("hold") == 1
