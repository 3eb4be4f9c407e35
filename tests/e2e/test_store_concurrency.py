"""Several Hearth processes writing one store at once: two `hearth add` runs, plus a process saving chats,
checkpoints and adapter records like the window and the trainer. Nobody dies of "database is locked",
nothing is lost.

Before `BEGIN IMMEDIATE`, a transaction that read before writing (every document replacement, every
adapter-list update) failed at once when another process had committed since its read, whatever the busy
timeout; and the adapter list was read outside the transaction that rewrote it, so concurrent adds lost
records.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from personalize.registry import Registry
from storage.store import Store

if TYPE_CHECKING:
    from tests.e2e.conftest import Spawn

ROOT = Path(__file__).resolve().parents[2]
NOTES = 30  # per folder (the report that found the crash used 60)
ROUNDS = 30  # per writer process


def _notes(folder: Path, label: str) -> None:
    folder.mkdir()
    for i in range(NOTES):
        body = f"Note {i} of {label}. " + " ".join(f"{label}{i}word{w}" for w in range(40))
        (folder / f"{label}-{i:03}.md").write_text(f"# {label} {i}\n\n{body}\n")


def test_two_adds_and_a_chat_and_trainer_writer_at_once_lose_nothing(
    store: Store, tmp_path: Path, spawn: Spawn
) -> None:
    store.close()
    _notes(tmp_path / "a", "alpha")
    _notes(tmp_path / "b", "beta")
    writer = str(ROOT / "tests" / "fixtures" / "store_writer.py")
    processes = {
        "add a": spawn("-m", "desktop.cli", "add", str(tmp_path / "a")),
        "add b": spawn("-m", "desktop.cli", "add", str(tmp_path / "b")),
        "writer 1": spawn(writer, "w1", str(ROUNDS)),
        "writer 2": spawn(writer, "w2", str(ROUNDS)),
    }
    results = {name: (*p.communicate(timeout=600), p.returncode) for name, p in processes.items()}
    for name, (_, err, code) in results.items():
        assert code == 0 and "Traceback" not in err, f"{name} exited {code}: {err[-2000:]}"
    assert results["writer 1"][0].strip() == results["writer 2"][0].strip() == f"done {ROUNDS}"

    with Store.open() as reopened:
        files = reopened.db.execute("SELECT count(*) FROM doc_files").fetchone()[0]
        assert files == 2 * NOTES
        conversations = reopened.chats.list()
        assert len(conversations) == 2 * ROUNDS
        replies = [m for c in conversations for m in reopened.chats.messages(c["id"]) if m["role"] == "assistant"]
        assert len(replies) == 2 * ROUNDS
        assert all(m["content"] == "".join(f" t{t}" for t in range(10)) for m in replies)
        assert all(m["status"] == "complete" for m in replies)
        ids = {r.id for r in Registry(reopened).list()}
        assert ids == {f"w{w}-{i}" for w in (1, 2) for i in range(ROUNDS)}  # no adapter record lost
        assert Registry(reopened).checkpoint() is not None
        assert reopened.integrity_check() == ["ok"]
