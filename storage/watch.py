"""Watched folders: the folders a user added stay indexed while Hearth runs, and catch up on start.

`hearth add FOLDER` (and the window's Add folder) remembers the folder with its include/exclude globs and
size cap (settings key `documents.folders`). A `FolderWatcher` then

1. rescans every watched folder once (`scan`): new and changed files are indexed, unchanged ones skipped
   by hash, files gone while Hearth was not running are forgotten;
2. follows changes as they happen (`run`, through `watchfiles`: inotify, FSEvents or
   ReadDirectoryChangesW, polling where none works), applying each debounced batch with `apply`. A rename
   arrives as a deletion plus an addition; a sub-folder deleted or moved away forgets everything under
   it. A watched folder that is missing as a whole (an unplugged drive) keeps its documents and is
   reported as missing until it is back or unwatched.

While a batch is being indexed its files are listed under `documents.waiting`, so `hearth docs` (any
process) shows them as "waiting" until each one is indexed or failed with its reason: a listing never
says "indexed" for a file Hearth has not read yet. The watcher runs on its own thread with its own
connection (`connect`, e.g. `Store.connect_again`), so chat writes are never queued behind it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.documents import WAITING_KEY, Documents, live_waiting
from storage.embeddings import Embedder
from storage.ingest import Ingester, Outcome, ProgressFn, StopFn, Summary
from storage.parsers import is_supported
from storage.parsers.discover import DEFAULT_MAX_BYTES, SKIP_DIRS
from storage.parsers.worker import ParseLimits, ParserProcess
from storage.settings import Settings

log = logging.getLogger(__name__)

FOLDERS_KEY = "documents.folders"  # {folder: {"include": [...], "exclude": [...], "max_bytes": n}}
DEBOUNCE_MS = 500  # editors save in several writes; one batch per save
_RECHECK_MS = 2000  # how often a quiet watcher re-reads the folder list (a folder added by another process)
_IDLE_CHILD_S = 60.0  # a parser child unused this long is closed (the next change starts a new one)
_WAITING_WRITE_S = 1.0  # the waiting list is rewritten at most this often while a batch indexes


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path.rstrip(os.sep) + os.sep)


class WatchedFolders:
    """The user's watched folders, kept in the encrypted settings table."""

    def __init__(self, db: Callable[[], Database]) -> None:
        self._settings = Settings(db)

    def list(self) -> list[WatchedFolder]:
        raw: dict[str, dict[str, Any]] = self._settings.get(FOLDERS_KEY, {})
        return [
            WatchedFolder(
                p, tuple(o.get("include", ())), tuple(o.get("exclude", ())), o.get("max_bytes", DEFAULT_MAX_BYTES)
            )
            for p, o in sorted(raw.items())
        ]

    def add(
        self,
        folder: str | Path,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> WatchedFolder:
        path = str(Path(folder).expanduser().resolve())
        raw = self._settings.get(FOLDERS_KEY, {})
        raw[path] = {"include": list(include), "exclude": list(exclude), "max_bytes": max_bytes}
        self._settings.set(FOLDERS_KEY, raw)
        return WatchedFolder(path, tuple(include), tuple(exclude), max_bytes)

    def remove(self, folder: str | Path) -> bool:
        """Stop watching a folder (its documents stay indexed; `hearth forget` removes them)."""
        raw = self._settings.get(FOLDERS_KEY, {})
        found = raw.pop(str(Path(folder).expanduser().resolve()), None) or raw.pop(str(folder), None)
        if found is not None:
            self._settings.set(FOLDERS_KEY, raw)
        return found is not None


def remember_folders(
    db: Callable[[], Database],
    paths: Iterable[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[WatchedFolder]:
    """Watch the folders among `paths` (files named one by one are indexed once, not watched)."""
    folders = WatchedFolders(db)
    return [folders.add(p, include, exclude, max_bytes) for p in paths if Path(p).expanduser().is_dir()]


@dataclass
class BatchResult:
    """What one scan or change batch did, for logs and tests."""

    summary: Summary = field(default_factory=Summary)
    forgotten: list[str] = field(default_factory=list)


class FolderWatcher:
    """Keeps the watched folders indexed; use from one thread (it owns its connection)."""

    def __init__(
        self,
        db: Callable[[], Database],
        embedder: Embedder | None = None,
        limits: ParseLimits | None = None,
        embed: bool = True,
    ) -> None:
        self._db = db
        self.folders = WatchedFolders(db)
        self.docs = Documents(db)
        self.ingester = Ingester(db, embedder, limits=limits)
        self.embed = embed
        # One parser child kept across batches: a change is indexed without starting an interpreter
        # (~0.3 s on a loaded laptop); closed after a quiet minute, since it holds ~150 MB.
        self._parser: ParserProcess | None = None
        self._parser_used = 0.0
        self._running = False  # inside run(): the child outlives a batch

    def scan(self, should_stop: StopFn | None = None, progress: ProgressFn | None = None) -> BatchResult:
        """Bring every watched folder up to date: index what is new or changed, forget what is gone."""
        folders = self.folders.list()
        result = BatchResult()
        # Files gone from a folder that is there; a folder that is missing altogether (an unplugged drive)
        # keeps its documents and is reported instead.
        present = [f for f in folders if os.path.isdir(f.path)]
        known = [*self.docs.paths(), *self.docs.failures()]
        gone = [p for p in known if any(f.covers(p) for f in present) and not os.path.exists(p)]
        result.forgotten = self._forget(gone)
        for folder in folders:
            if not os.path.isdir(folder.path):
                result.summary.outcomes.append(Outcome(folder.path, "failed", "watched folder is missing"))
                continue
            self._index(folder, [folder.path], result.summary, should_stop, progress, trust_stat=True)
            if result.summary.cancelled:
                break
        return result

    def apply(self, changes: Iterable[tuple[Any, str]], should_stop: StopFn | None = None) -> BatchResult:
        """Apply one batch of (change, path) events: whatever exists now is (re)indexed, the rest forgotten.

        The change kind is not trusted (a rename is reported as deleted + added, sometimes reordered); the
        file system at the time of the batch decides.
        """
        folders = self.folders.list()
        result = BatchResult()
        present: dict[WatchedFolder, list[str]] = {}
        gone: list[str] = []
        for _, path in changes:
            folder = next((f for f in folders if f.covers(path)), None)
            if folder is None or _passed_over(folder, path):
                continue
            if os.path.lexists(path):
                if os.path.isdir(path) or is_supported(path):
                    present.setdefault(folder, []).append(path)
            else:
                gone.append(path)
        result.forgotten = self._forget(gone)
        for folder, paths in present.items():
            self._index(folder, sorted(set(paths)), result.summary, should_stop)
        return result

    def run(
        self,
        should_stop: StopFn,
        on_batch: Callable[[BatchResult], None] | None = None,
        ready: threading.Event | None = None,
    ) -> None:
        """Scan, then follow changes until should_stop() is true (checked every 50 ms).

        `ready` is set once the file-system watch is in place (after the first scan), so a caller or a test
        can make changes knowing they will be seen.
        """
        # RustNotify is watchfiles' documented low-level API; unlike `watchfiles.watch` it says when the
        # watch is in place (its constructor returns) and leaves the change batches to us.
        from watchfiles._rust_notify import RustNotify

        stop = _StopEvent(should_stop)
        self._running = True
        try:
            while not stop.is_set():
                watched = self._existing()
                # The watch starts before the scan: a change made while the scan runs is buffered, not lost.
                notify = RustNotify(watched, False, False, 300, True, True) if watched else None
                try:
                    result = self.scan(should_stop)
                    if on_batch is not None and (result.summary.outcomes or result.forgotten):
                        on_batch(result)
                    if ready is not None:
                        ready.set()
                    if notify is None:  # nothing to watch (yet): look again later
                        _sleep_until(stop, _RECHECK_MS / 1000)
                        continue
                    while not stop.is_set():
                        changes = notify.watch(DEBOUNCE_MS, 50, _RECHECK_MS, stop)
                        if isinstance(changes, set) and changes:
                            result = self.apply(changes, should_stop)
                            if on_batch is not None:
                                on_batch(result)
                        elif self._parser is not None and time.monotonic() - self._parser_used > _IDLE_CHILD_S:
                            self._close_parser()
                        if self._existing() != watched:
                            break  # the folder list changed (or a folder vanished): rescan and watch the new set
                finally:
                    if notify is not None:
                        notify.close()
                    self._close_parser()
        finally:
            self._running = False

    def _close_parser(self) -> None:
        parser, self._parser = self._parser, None
        if parser is not None:
            parser.close()

    def _existing(self) -> list[str]:
        return sorted(f.path for f in self.folders.list() if os.path.isdir(f.path))

    # -- internals ----------------------------------------------------------------------------------

    def _forget(self, paths: Sequence[str]) -> list[str]:
        """Forget indexed files at these paths or under them (a folder deleted or moved away)."""
        if not paths:
            return []
        prefixes = tuple(p.rstrip(os.sep) + os.sep for p in paths)

        def gone(known: str) -> bool:
            return (known in paths or known.startswith(prefixes)) and not os.path.exists(known)

        doomed = [k for k in self.docs.paths() if gone(k)]
        self.docs.forget_paths(doomed)
        failed = [p for p in self.docs.failures() if gone(p)]
        self.docs.record_results({}, [*doomed, *failed])
        return doomed

    def _index(
        self,
        folder: WatchedFolder,
        paths: Sequence[str],
        summary: Summary,
        should_stop: StopFn | None,
        progress: ProgressFn | None = None,
        trust_stat: bool = False,
    ) -> None:
        waiting = _Waiting(Settings(self._db))

        def on_found(queued: Sequence[str]) -> None:
            waiting.add(queued)

        def on_file(outcome: Outcome) -> None:
            if outcome.status != "failed":  # a failure shows once recorded, when the batch ends
                waiting.done(outcome.path)

        if self._parser is None:
            self._parser = ParserProcess(self.ingester.limits)
        self._parser_used = time.monotonic()
        try:
            part = self.ingester.add(
                paths,
                include=folder.include,
                exclude=folder.exclude,
                max_bytes=folder.max_bytes,
                progress=progress,
                should_stop=should_stop,
                embed=self.embed,
                on_found=on_found,
                on_file=on_file,
                parser=self._parser,
                trust_stat=trust_stat,
            )
        finally:
            waiting.clear()
            if not self._running:
                self._close_parser()
        summary.outcomes.extend(part.outcomes)
        summary.embedded += part.embedded
        summary.pending_vectors = part.pending_vectors
        summary.cancelled = summary.cancelled or part.cancelled
        summary.seconds += part.seconds


class _Waiting:
    """This watcher's entry in `documents.waiting`, rewritten at most once a second while it shrinks; other
    watchers' entries (the window and `hearth serve` may watch at once) are left alone."""

    _count = itertools.count(1)

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._owner = f"{os.getpid()}-{next(self._count)}"
        self._paths: dict[str, None] = {}
        self._written = 0.0

    def add(self, paths: Sequence[str]) -> None:
        self._paths.update(dict.fromkeys(paths))
        self._write(force=True)

    def done(self, path: str) -> None:
        self._paths.pop(path, None)
        self._write()

    def clear(self) -> None:
        self._paths.clear()
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        if force or time.monotonic() - self._written >= _WAITING_WRITE_S:
            self._settings.update(WAITING_KEY, self._mine, {})
            self._written = time.monotonic()

    def _mine(self, value: Any) -> dict[str, list[str]]:
        lists = live_waiting(value)
        lists.pop(self._owner, None)
        if self._paths:
            lists[self._owner] = list(self._paths)
        return lists


def _passed_over(folder: WatchedFolder, path: str) -> bool:
    """What a folder walk skips silently (hidden entries, dependency folders) is skipped here too."""
    parts = Path(path).relative_to(folder.path).parts if path != folder.path else ()
    return any(p.startswith(".") or p in SKIP_DIRS for p in parts)


class _StopEvent:
    """watchfiles polls `stop_event.is_set()` every step; this turns a should_stop callable into one."""

    def __init__(self, should_stop: StopFn) -> None:
        self._should_stop = should_stop

    def is_set(self) -> bool:
        return bool(self._should_stop())


def _sleep_until(stop: _StopEvent, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)


class WatcherThread:
    """A FolderWatcher on a daemon thread with its own store connection: `hearth serve` and the window.

    `connect` opens the connection (`Store.connect_again`) on the watcher's thread; `stop()` returns
    within about a second (the watch and the parser child both check the stop flag every 0.1 s or less).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        on_batch: Callable[[BatchResult], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        embed: bool = True,
    ) -> None:
        self._connect = connect
        self._embed = embed
        self._on_batch = on_batch
        self._on_error = on_error
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="hearth-watch", daemon=True)

    def start(self) -> WatcherThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _main(self) -> None:
        from storage.db import StoreDatabase
        from storage.errors import KnownError

        conn = self._connect()
        try:
            db = StoreDatabase(conn, execute_plugins=False)
            FolderWatcher(lambda: db, embed=self._embed).run(self._stop.is_set, self._on_batch, self.ready)
        except KnownError as exc:  # a full disk or a locked store: said once, the watcher stops
            if self._on_error is not None:
                self._on_error(str(exc))
        except Exception as exc:  # a bug: logged by type and frames (a message could quote a path)
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("the folder watcher stopped on %s\n%s", type(exc).__name__, frames)
            if self._on_error is not None:
                self._on_error(f"watching folders stopped ({type(exc).__name__}); restart Hearth to resume")
        finally:
            self.ready.set()
            conn.close()
