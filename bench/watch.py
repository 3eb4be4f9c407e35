"""Watched-folder latency: from a file's change on disk to its words being searchable, Hearth's watcher
versus re-running the folder ingest (what keeping a folder current costs without a watcher).

Run: `.venv/bin/python bench/watch.py [--trials 5]` (about 1-2 minutes on 2 cores). Both sides run in this
one process on the same encrypted store, so a busier machine shifts both alike.

Corpora: "notes" (40 short Markdown/text notes), "library" (400 files: notes plus pydoc pages of stdlib
modules, ~4 MB), "nested" (the library spread over 3 levels of sub-folders). Each trial creates one new
note holding a unique word, then modifies an existing one to hold another; latency is the time until
`Searcher.search(word)` finds it (keyword search: vectors follow in the background either way).
- Baseline: after the change, `Ingester.add(folder)` over the whole folder (reads and hashes every file,
  parses the changed one), timed to the same "searchable" point.
- Hearth: `WatcherThread` already running (inotify through watchfiles, 500 ms debounce ceiling).
"""

from __future__ import annotations

import argparse
import os
import pydoc
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
MODULES = ["json", "argparse", "collections", "logging", "pathlib", "csv", "zipfile", "subprocess", "shutil"]


def build(root: Path, kind: str) -> Path:
    folder = root / kind
    files = 40 if kind == "notes" else 400
    for i in range(files):
        sub = folder / (f"d{i % 3}/e{i % 2}" if kind == "nested" else "")
        sub.mkdir(parents=True, exist_ok=True)
        if kind != "notes" and i % 10 == 0:
            name = MODULES[(i // 10) % len(MODULES)]
            text = pydoc.render_doc(__import__(name), renderer=pydoc.plaintext)[:20000]
            (sub / f"{name}-{i}.txt").write_text(text)
        else:
            (sub / f"note-{i}.md").write_text(f"# Note {i}\n\nShopping list {i}: apples, flour, candles.\n")
    return folder


def wait_searchable(search, word: str, timeout: float = 120) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if any(h.keyword for h in search(word, k=1)):
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"{word} never became searchable")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hearth-bench-watch-"))
    os.environ.update(HEARTH_HOME=str(root / "home"), HEARTH_PASSPHRASE="bench passphrase", HEARTH_KEYRING="0")
    from storage import cpu
    from storage.ingest import Ingester
    from storage.search import Searcher
    from storage.store import Store
    from storage.watch import WatchedFolders, WatcherThread

    print(f"CPU: {cpu.describe()}; load average {os.getloadavg()[0]:.1f} (shared machine: ratios, not absolutes)")
    store = Store.open()
    search = Searcher(lambda: store.db).search
    print(f"{'corpus':<8} {'files':>5} {'change':<7} {'rescan p50 s':>13} {'watcher p50 s':>14} {'ratio':>7}")
    for kind in ("notes", "library", "nested"):
        folder = build(root, kind)
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        Ingester(lambda: store.db).add([folder], embed=False)
        existing = sorted(folder.rglob("note-*.md"))
        for change in ("create", "modify"):
            rescan, watched = [], []
            for trial in range(args.trials):
                target = folder / f"new-{trial}.md" if change == "create" else existing[trial]
                word = f"rescan{kind}{change}{trial}x"
                target.write_text(f"# Fresh\n\nThe word {word} appears here.\n")
                started = time.monotonic()
                Ingester(lambda: store.db).add([folder], embed=False)
                rescan.append(time.monotonic() - started + wait_searchable(search, word))
            WatchedFolders(lambda: store.db).add(folder)
            thread = WatcherThread(store.connect_again, embed=False).start()
            thread.ready.wait(120)
            for trial in range(args.trials):
                target = folder / f"new-w{trial}.md" if change == "create" else existing[-1 - trial]
                word = f"watched{kind}{change}{trial}x"
                target.write_text(f"# Fresh\n\nThe word {word} appears here.\n")
                watched.append(wait_searchable(search, word))
            thread.stop()
            WatchedFolders(lambda: store.db).remove(folder)
            r, w = statistics.median(rescan), statistics.median(watched)
            print(f"{kind:<8} {files:>5} {change:<7} {r:>13.2f} {w:>14.2f} {r / w:>6.1f}x")
    store.close()


if __name__ == "__main__":
    main()
