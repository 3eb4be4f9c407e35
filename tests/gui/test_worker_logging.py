"""A task that fails on a GUI worker is logged by type and frames, never by its message (it may quote text)."""

from __future__ import annotations

import logging

import pytest

from desktop.engine.executor import Executor
from desktop.ui.workers import Worker

SECRET = "the user's message: my bank PIN is 4921"


def test_a_failed_task_logs_no_message_text(qtbot, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    executor = Executor("store")
    worker = Worker(executor)
    errors: list[str] = []

    def fails() -> None:
        raise ValueError(SECRET)

    try:
        with caplog.at_level(logging.ERROR), qtbot.waitSignal(worker._relay.task_did_finish, timeout=10_000):
            future = worker.submit(fails, on_error=errors.append)
        assert isinstance(future.exception(timeout=10), ValueError)
    finally:
        worker.close()
        executor.close()
    qtbot.waitUntil(lambda: errors == ["internal error (ValueError); see the log"], timeout=10_000)
    logged = caplog.text  # formatted as a log file would hold it, tracebacks included
    assert "ValueError" in logged and "fails" in logged  # what failed, and where
    assert SECRET not in logged and "4921" not in logged
    assert all(r.exc_info is None for r in caplog.records)
