"""Watched folders on a real SQLCipher store with real files: the start-up scan, then live changes.

The live test runs the watcher on its own thread with its own connection, exactly as `hearth serve`
does, and waits for each batch through its `on_batch` hook (no sleeps standing in for a result).
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import pytest

from storage.documents import Documents
from storage.search import Searcher
from storage.watch import BatchResult, FolderWatcher, WatchedFolders, WatcherThread, remember_folders


def _listing(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {Path(r.path).name: r.status for r in Documents(lambda: store.db).listing()}


def _found(store, words: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Files whose text holds the words (keyword hits; nearest-meaning neighbours are left out)."""
    return [Path(h.source).name for h in Searcher(lambda: store.db).search(words, k=5) if h.keyword]


def test_start_up_scan_catches_up_with_changes_made_while_not_running(store, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.md").write_text("# Keep\nThe lighthouse keeper logs the tide.\n")
    (folder / "gone.txt").write_text("The ferry timetable changes in winter.\n")
    (folder / "broken.pdf").write_bytes(b"not a pdf at all")
    remember_folders(lambda: store.db, [folder, tmp_path / "missing-file.txt"])
    assert [f.path for f in WatchedFolders(lambda: store.db).list()] == [str(folder.resolve())]
    watcher = FolderWatcher(lambda: store.db, embed=False)
    first = watcher.scan()
    assert first.summary.counts() == {"added": 2, "updated": 0, "skipped": 0, "failed": 1}
    assert _listing(store) == {
        "broken.pdf": "failed: corrupt PDF (no PDF header)",
        "gone.txt": "waiting (1 of 1 chunks await vectors)",
        "keep.md": "waiting (1 of 1 chunks await vectors)",
    }
    # Hearth is not running: one file is deleted, one changed, one added, the broken one fixed by deletion.
    (folder / "gone.txt").unlink()
    (folder / "broken.pdf").unlink()
    (folder / "keep.md").write_text("# Keep\nThe lighthouse keeper logs the storm.\n")
    (folder / "new.txt").write_text("Harbour fees are paid at the office by the pier.\n")
    second = watcher.scan()
    assert sorted(Path(p).name for p in second.forgotten) == ["gone.txt"]
    assert second.summary.counts() == {"added": 1, "updated": 1, "skipped": 0, "failed": 0}
    assert set(_listing(store)) == {"keep.md", "new.txt"}
    assert _found(store, "storm") == ["keep.md"] and _found(store, "tide") == []
    third = watcher.scan()  # nothing changed: nothing re-read (size and modification time match)
    assert {o.reason for o in third.summary.outcomes} == {"unchanged (same size and time)"}
    assert third.summary.counts()["skipped"] == 2


def test_missing_watched_folder_is_reported_not_forgotten(store, tmp_path: Path) -> None:
    folder = tmp_path / "usb"
    folder.mkdir()
    (folder / "a.txt").write_text("Passport renewal needs two photos.\n")
    remember_folders(lambda: store.db, [folder])
    watcher = FolderWatcher(lambda: store.db, embed=False)
    watcher.scan()
    folder.rename(tmp_path / "unplugged")
    result = watcher.scan()
    assert [(o.status, o.reason) for o in result.summary.outcomes] == [("failed", "watched folder is missing")]
    # A folder that vanished whole (an unplugged drive) keeps its documents until it is back or unwatched.
    assert result.forgotten == [] and list(_listing(store)) == ["a.txt"]


@pytest.mark.slow
def test_live_changes_are_searchable_and_listed(store, tmp_path: Path) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "start.txt").write_text("The allotment key hangs by the shed door.\n")
    remember_folders(lambda: store.db, [folder])
    batches: queue.Queue[BatchResult] = queue.Queue()
    thread = WatcherThread(store.connect_again, on_batch=batches.put).start()
    try:
        assert thread.ready.wait(60)
        assert batches.get(timeout=30).summary.counts()["added"] == 1

        def next_batch_where(check) -> BatchResult:  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                batch = batches.get(timeout=60)
                if check(batch):
                    return batch
            raise AssertionError("the watcher never reported the change")

        created = folder / "created.md"
        created.write_text("# Bikes\nThe tandem needs a new chain before spring.\n")
        next_batch_where(lambda b: any(o.path == str(created) and o.status == "added" for o in b.summary.outcomes))
        assert _found(store, "tandem chain") == ["created.md"]

        created.write_text("# Bikes\nThe tandem needs new brake pads before spring.\n")
        next_batch_where(lambda b: any(o.path == str(created) and o.status == "updated" for o in b.summary.outcomes))
        assert _found(store, "brake pads") == ["created.md"] and _found(store, "chain") == []

        renamed = folder / "sub" / "bikes.md"
        renamed.parent.mkdir()
        os.rename(created, renamed)
        next_batch_where(lambda b: any(o.path == str(renamed) and o.status == "added" for o in b.summary.outcomes))
        assert _found(store, "brake pads") == ["bikes.md"]

        (folder / "start.txt").unlink()
        next_batch_where(lambda b: str(folder / "start.txt") in b.forgotten)
        assert _found(store, "allotment") == []

        (folder / "bad.docx").write_bytes(b"PK not really a zip")
        next_batch_where(lambda b: any(o.status == "failed" for o in b.summary.outcomes))
        listing = _listing(store)
        assert listing["bad.docx"] == "failed: corrupt DOCX file (not a valid zip archive)"
        assert set(listing) == {"bikes.md", "bad.docx"}
        assert Documents(lambda: store.db).waiting() == []
    finally:
        started = time.monotonic()
        thread.stop()
        assert time.monotonic() - started < 3  # Stop is prompt


def test_two_watchers_keep_their_own_waiting_lists(store, tmp_path: Path) -> None:
    """The window and `hearth serve` may watch at once: one finishing its batch must not un-list the other's
    queued files, and the list of a watcher killed mid-batch is not shown as "waiting" forever."""
    import subprocess
    import sys

    from storage.documents import WAITING_KEY
    from storage.settings import Settings
    from storage.watch import _Waiting

    settings = Settings(lambda: store.db)
    window, serve = _Waiting(settings), _Waiting(settings)
    window.add([str(tmp_path / "a.md"), str(tmp_path / "b.md")])
    serve.add([str(tmp_path / "c.md")])
    docs = Documents(lambda: store.db)
    assert [Path(p).name for p in docs.waiting()] == ["a.md", "b.md", "c.md"]
    window.clear()
    assert [Path(p).name for p in docs.waiting()] == ["c.md"]
    assert _listing(store) == {"c.md": "waiting"}
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    settings.update(WAITING_KEY, lambda lists: {**lists, f"{dead.stdout.strip()}-1": [str(tmp_path / "d.md")]})
    assert [Path(p).name for p in docs.waiting()] == ["c.md"]
    serve.done(str(tmp_path / "c.md"))
    serve.clear()
    assert docs.waiting() == [] and settings.get(WAITING_KEY) == {}
