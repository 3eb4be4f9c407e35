"""The single-thread executors that own the Store and the Engine (desktop/engine/executor.py)."""

from __future__ import annotations

import threading

import pytest

from desktop.engine.executor import Executor, ExecutorClosed, StoreProxy


def test_work_runs_in_order_on_one_named_thread() -> None:
    executor = Executor("unit")
    try:
        seen: list[tuple[int, str]] = []
        futures = [executor.submit(lambda i=i: seen.append((i, threading.current_thread().name))) for i in range(5)]
        for future in futures:
            future.result(timeout=10)
        assert [i for i, _ in seen] == list(range(5))
        assert len({name for _, name in seen}) == 1 and seen[0][1].startswith("hearth-unit")
    finally:
        executor.close()


def test_call_from_its_own_thread_runs_inline_instead_of_deadlocking() -> None:
    executor = Executor("unit")
    try:
        assert executor.submit(lambda: executor.call(lambda: 41) + 1).result(timeout=10) == 42
        assert not executor.on_thread()
    finally:
        executor.close()


def test_a_closed_executor_refuses_work() -> None:
    executor = Executor("unit")
    executor.close()
    with pytest.raises(ExecutorClosed):
        executor.submit(print)


def test_store_proxy_forwards_calls_to_the_executor_thread() -> None:
    class Chats:
        def where(self, prefix: str) -> str:
            return f"{prefix} {threading.current_thread().name}"

    class FakeStore:  # the proxy only forwards attribute paths; the real Store is covered by the GUI tests
        chats = Chats()

    executor = Executor("store-unit")
    try:
        assert StoreProxy(executor, FakeStore()).chats.where("on").startswith("on hearth-store-unit")
    finally:
        executor.close()
