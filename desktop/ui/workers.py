"""Single-thread workers that own the objects which are not thread-safe, and hand results back to Qt.

Anki's shape: one worker owns the SQLCipher connection (the Store), another owns the llama context (the
Engine). Each is a `ThreadPoolExecutor(max_workers=1)`, so work submitted to it runs in order on one thread.
Results come back to the GUI thread through a queued Qt signal; workers never touch widgets.

`StoreProxy` lets code that runs on the engine thread (a `Conversation` streaming a reply and saving each
piece) use the Store anyway: every call is forwarded to the store worker and waited for there.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from storage.errors import KnownError

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Relay(QObject):
    """Lives on the GUI thread; a signal emitted from a worker thread is delivered here as a queued call."""

    task_did_finish = Signal(object, object)  # (callback, value)


class Worker:
    """One thread that runs submitted callables in order; `on_done`/`on_error` run later on the GUI thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hearth-{name}")
        self._relay = _Relay()
        self._relay.task_did_finish.connect(self._deliver)
        self._closed = False

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callback | None = None,
        on_error: Callback | None = None,
    ) -> concurrent.futures.Future[Any] | None:
        """Run fn(*args) on this worker. A KnownError goes to on_error as its message; other errors are bugs:
        logged by type and frames only (their message and arguments may hold user content) and reported as a
        generic message."""
        if self._closed:
            return None  # shutting down: a late callback asking for more work is not an error
        return self._executor.submit(self._run, fn, args, on_done, on_error)

    def _run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_done: Callback | None,
        on_error: Callback | None,
    ) -> Any:
        try:
            value = fn(*args)
        except KnownError as exc:
            if on_error is not None:
                self._relay.task_did_finish.emit(on_error, str(exc))
            raise
        except Exception as exc:
            # The type and the frames, never the message: it can quote a message or a document.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            task = getattr(fn, "__qualname__", "task")
            log.error("%s worker: %s failed with %s\n%s", self.name, task, type(exc).__name__, frames)
            if on_error is not None:
                self._relay.task_did_finish.emit(on_error, f"internal error ({type(exc).__name__}); see the log")
            raise
        if on_done is not None:
            self._relay.task_did_finish.emit(on_done, value)
        return value

    def emit(self, callback: Callback, value: Any = None) -> None:
        """From this worker's thread: run callback(value) on the GUI thread (progress, streamed text)."""
        self._relay.task_did_finish.emit(callback, value)

    def _deliver(self, callback: Callback, value: Any) -> None:
        if not self._closed:  # after shutdown the widgets a callback would touch may be gone
            callback(value)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn on this worker and wait for it: for other worker threads only, never the GUI thread."""
        if threading.current_thread().name.startswith(f"hearth-{self.name}"):
            return fn(*args)  # already on this worker: waiting for ourselves would deadlock
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        """Finish queued work, then stop the thread (callers cancel long work first)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)


class StoreProxy:
    """Stands in for a Store on another thread: `proxy.chats.add_message(...)` runs on the store worker."""

    def __init__(self, worker: Worker, store: Any, path: tuple[str, ...] = ()) -> None:
        self.worker = worker
        self.target = store
        self._path = path

    def __getattr__(self, name: str) -> StoreProxy:
        return StoreProxy(self.worker, self.target, (*self._path, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = functools.reduce(getattr, self._path, self.target)
        return self.worker.call(functools.partial(target, *args, **kwargs))
