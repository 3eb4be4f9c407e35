"""Single-thread executors: each owns one object that is not thread-safe, and runs its work in order.

Anki's shape, without Qt: the SQLCipher connection (the Store) belongs to the store executor, the llama
context (the Engine) to the engine executor. `desktop.services.Services` builds the two once; every front end
that runs more than one thread (the window, the window-hosted API, `hearth serve`) submits to them, so a
thread crossing happens only here. The CLI's single thread may use the Store and the Engine directly.

`StoreProxy` lets work running on the engine executor (a `Conversation` saving a reply, an API request
reading an adapter) use the Store anyway: each call is forwarded to the store executor and waited for.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ExecutorClosed(RuntimeError):
    """Work submitted after `close()` (a late callback during shutdown)."""


class Executor:
    """One named thread (`hearth-<name>`) that runs submitted callables one after another."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hearth-{name}")
        self._thread_ident: int | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue fn(*args); raises ExecutorClosed once the executor is shutting down."""
        if self._closed:
            raise ExecutorClosed(f"the {self.name} executor is closed")
        try:
            return self._pool.submit(self._run, fn, args)
        except RuntimeError as exc:  # closed between the check and the submit
            raise ExecutorClosed(f"the {self.name} executor is closed") from exc

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self._thread_ident = threading.get_ident()
        return fn(*args)

    def on_thread(self) -> bool:
        """True when called from this executor's own thread."""
        return self._thread_ident == threading.get_ident()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn here and wait for its result (from another executor's thread, never the GUI thread).

        From this executor's own thread it runs inline: waiting for ourselves would deadlock.
        """
        if self.on_thread():
            return fn(*args)
        return self.submit(fn, *args).result()

    def close(self) -> None:
        """Finish the running task, drop queued ones, end the thread (callers stop long work first)."""
        self._closed = True
        if self.on_thread():  # a task closing its own executor: the thread ends after it returns
            self._pool.shutdown(wait=False, cancel_futures=True)
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)


class StoreProxy:
    """Stands in for a Store on another thread: `proxy.chats.add_message(...)` runs on the store executor."""

    def __init__(self, executor: Executor, store: Any, path: tuple[str, ...] = ()) -> None:
        self.executor = executor
        self.target = store
        self._path = path

    def __getattr__(self, name: str) -> StoreProxy:
        return StoreProxy(self.executor, self.target, (*self._path, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = functools.reduce(getattr, self._path, self.target)
        return self.executor.call(functools.partial(target, *args, **kwargs))
