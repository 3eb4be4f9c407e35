"""A bounded line of requests for one model, run on that model's single-thread executor.

The llama context (and the embedder) are not thread-safe, and two generations at once would only halve each
other's speed on a CPU, so every request's work runs on one executor thread, one job at a time. The chat
line runs on the engine executor it is given (`Services.engine_executor`): when the window hosts the API,
its replies and the API's are jobs on that same thread, one after the other. At most
`capacity` jobs wait; a request arriving at a full line gets `QueueFull` (the API answers 429 with a
Retry-After estimated from recent job times), so a burst of clients costs memory for `capacity` requests,
never a crash.

A job is a function returning an iterator; its items travel to the event loop through a `Ticket`, which the
request handler iterates with `async for`. Cancelling a ticket (the client went away) skips the job if it
is still waiting, or closes its iterator before the next item if it is running — for a chat, within one
token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from desktop.engine.executor import Executor, ExecutorClosed

T = TypeVar("T")
log = logging.getLogger(__name__)

# Retry-After bounds, seconds: clients sleep this long before retrying a 429.
MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 60


class QueueFull(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("the request queue is full")
        self.retry_after = retry_after


class WorkerStopped(Exception):
    """The server is shutting down; the job did not run (or did not finish)."""


class JobFailed(Exception):
    """The job raised an unexpected exception (a bug, logged on the server without its message)."""


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Ticket(Generic[T]):
    """A job's place in line and the channel its items come back through (iterate it on the event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: asyncio.Queue[object] = asyncio.Queue()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Thread-safe and idempotent: the job is skipped or stops before its next item."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __aiter__(self) -> Ticket[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._items.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item  # type: ignore[return-value]

    def _deliver(self, item: object) -> bool:
        """From the worker thread; False when the event loop is gone (server stopped)."""
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # loop closed
            return False
        return True


class ModelWorker:
    """Runs submitted jobs one at a time on an executor; `submit` refuses when `capacity` jobs wait.

    Without an executor the worker makes its own (`hearth-api-<name>`) and closes it in `stop()`; a shared
    one (the engine executor) is left running for its owner.
    """

    def __init__(self, name: str, capacity: int, executor: Executor | None = None) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.name = name
        self.capacity = capacity
        self._executor = executor or Executor(f"api-{name}")
        self._owns_executor = executor is None
        self._in_flight = 0  # the running job plus those waiting; at most capacity + 1
        self._count_lock = threading.Lock()
        self._avg_job_s = 5.0  # prior for Retry-After until real jobs have been timed
        self._accepted: dict[Ticket, concurrent.futures.Future[None]] = {}  # not finished yet
        self._stopping = False

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, cancel waiting ones, let the running one stop at its next item, wait for it."""
        self._stopping = True
        with self._count_lock:
            accepted = dict(self._accepted)
        for ticket in accepted:
            ticket.cancel()
        concurrent.futures.wait(list(accepted.values()), timeout)
        if self._owns_executor:
            self._executor.close()

    def submit(self, work: Callable[[], Iterator[T]]) -> Ticket[T]:
        """Queue work (call from the event loop). Raises QueueFull or WorkerStopped instead of waiting."""
        if self._stopping:
            raise WorkerStopped()
        ticket: Ticket[T] = Ticket(asyncio.get_running_loop())
        with self._count_lock:
            # Counted at submit, not when the executor picks a job up, so the limit never depends on timing.
            if self._in_flight > self.capacity:
                raise QueueFull(self._retry_after())
            self._in_flight += 1
            try:
                self._accepted[ticket] = self._executor.submit(self._run, ticket, work)
            except ExecutorClosed:
                self._in_flight -= 1
                raise WorkerStopped() from None
        return ticket

    def _retry_after(self) -> int:
        estimate = self._avg_job_s * self._in_flight
        return int(min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, math.ceil(estimate))))

    @property
    def in_flight(self) -> int:
        """Jobs accepted and not yet finished (running or waiting)."""
        return self._in_flight

    def _run(self, ticket: Ticket, work: Callable[[], Iterator]) -> None:
        try:
            if self._stopping:
                ticket._deliver(_Failure(WorkerStopped()))
            elif ticket.cancelled:
                ticket._deliver(_END)
            else:
                started = time.perf_counter()
                self._run_job(ticket, work)
                self._avg_job_s = 0.7 * self._avg_job_s + 0.3 * (time.perf_counter() - started)
        finally:
            with self._count_lock:
                self._in_flight -= 1
                self._accepted.pop(ticket, None)

    def _run_job(self, ticket: Ticket, work: Callable[[], Iterator]) -> None:
        completed = True
        try:
            items = work()
            try:
                for item in items:
                    if ticket.cancelled or not ticket._deliver(item):
                        completed = False
                        break
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # GeneratorExit inside the engine's loop: the llama stream is closed
        except Exception as exc:
            # The message may quote user content; log the exception type and the frames only.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("API %s job failed with %s\n%s", self.name, type(exc).__name__, frames)
            ticket._deliver(_Failure(JobFailed(type(exc).__name__)))
            return
        # A job cut short by stop() must not look finished to a handler still listening.
        ticket._deliver(_END if completed else _Failure(WorkerStopped()))
