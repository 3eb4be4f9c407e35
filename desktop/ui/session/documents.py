"""The Documents tab's model: list, add (index and embed) and forget documents, on the store executor; the
added folders stay indexed by a watcher on its own thread and connection (storage.watch)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from desktop.ui.session import ChatSession


class DocumentsFeature(QObject):
    documents_did_load = Signal(list)  # storage.documents.Listed
    ingest_did_progress = Signal(object)  # storage.ingest.Progress
    ingest_did_finish = Signal(object)  # storage.ingest.Summary

    def __init__(self, session: ChatSession) -> None:
        super().__init__(session)
        self._session = session
        self._stop_ingest = threading.Event()
        self._watcher: Any = None  # storage.watch.WatcherThread

    def load(self) -> None:
        s = self._session
        s.store_worker.submit(
            lambda: s.store().documents.listing(), on_done=self.documents_did_load.emit, on_error=s.fail
        )

    def add(self, paths: list[str]) -> None:
        """Index files and folders on the store executor. Chat saves wait for it (one connection, one
        owner); a reply saves in batches, so it waits once per batch, not once per token."""
        s = self._session
        self._stop_ingest = stop = threading.Event()

        def progress(snapshot: Any) -> None:
            s.store_worker.emit(self.ingest_did_progress.emit, snapshot)

        def done(summary: Any) -> None:
            self.ingest_did_finish.emit(summary)
            self.load()

        def failed(message: str) -> None:
            s.fail(message)
            self.load()

        def task() -> Any:
            from storage.watch import remember_folders

            store = s.store()
            remember_folders(lambda: store.db, paths)  # the watcher keeps them indexed from now on
            return store.ingest(paths, progress=progress, should_stop=stop.is_set)

        s.store_worker.submit(task, on_done=done, on_error=failed)

    def start_watcher(self) -> None:
        """Watched folders on their own thread and connection: chat never waits behind a folder scan."""
        from storage.watch import WatcherThread

        s = self._session

        def changed(_batch: Any) -> None:
            s.store_worker.emit(lambda _: self.load())

        store = s.services.store()  # already open: connect_again only reads its key
        self._watcher = WatcherThread(store.connect_again, on_batch=changed, on_error=s.fail).start()

    def stop_ingest(self) -> None:
        self._stop_ingest.set()

    def close(self) -> None:
        self._stop_ingest.set()
        if self._watcher is not None:
            self._watcher.stop()

    def forget(self, path: str) -> None:
        s = self._session

        def done(removed: list[str]) -> None:
            s.action_did_succeed.emit(f"Forgot {len(removed)} document(s)")
            self.load()

        s.store_worker.submit(lambda: s.store().documents.forget(path), on_done=done, on_error=s.fail)
