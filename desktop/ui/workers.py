"""The window's side of the executors: results delivered on the Qt main thread, never on a worker.

The executors themselves (`desktop.engine.executor`, built once by `Services`) are Qt-free. A `Worker` is
the GUI's handle on one of them: `submit(fn, on_done=..., on_error=...)` runs fn on the executor's thread and
calls the callback later on the GUI thread through a queued Qt signal, so workers never touch widgets.
"""

from __future__ import annotations

import concurrent.futures
import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.engine.executor import Executor, ExecutorClosed
from storage.errors import KnownError

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Relay(QObject):
    """Lives on the GUI thread; a signal emitted from a worker thread is delivered here as a queued call."""

    task_did_finish = Signal(object, object)  # (callback, value)


class Worker:
    """Runs callables on one executor; `on_done`/`on_error` run later on the GUI thread."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.name = executor.name
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
        """Run fn(*args) on the executor. A KnownError goes to on_error as its message; other errors are bugs:
        logged by type and frames only (their message and arguments may hold user content) and reported as a
        generic message."""
        if self._closed:
            return None  # shutting down: a late callback asking for more work is not an error
        try:
            return self.executor.submit(self._run, fn, args, on_done, on_error)
        except ExecutorClosed:
            return None

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
        """From any worker thread: run callback(value) on the GUI thread (progress, streamed text)."""
        self._relay.task_did_finish.emit(callback, value)

    def _deliver(self, callback: Callback, value: Any) -> None:
        if not self._closed:  # after shutdown the widgets a callback would touch may be gone
            callback(value)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn on the executor and wait for it: for other worker threads (and tests), never the GUI."""
        return self.executor.call(fn, *args)

    def close(self) -> None:
        """Stop delivering results; the executor itself is closed by its owner (`Services.close`)."""
        self._closed = True
