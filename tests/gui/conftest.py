"""GUI fixtures: the real window over a real encrypted store and the real bundled model, offscreen.

A Qt warning logged during a GUI test fails it (qutebrowser's rule), except the offscreen platform's own
notices, which say nothing about the app.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PASSPHRASE = "test passphrase: correct horse battery staple"  # the store_template's (tests/conftest.py)
PLATFORM_NOTICES = ("propagateSizeHints", "This plugin does not support")
LOAD_TIMEOUT_MS = 60_000
ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True)
def fail_on_qt_warnings(qtlog: Any) -> Iterator[None]:
    from PySide6.QtCore import QtMsgType

    yield
    bad = [
        r.message
        for r in qtlog.records
        if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
        and not any(notice in r.message for notice in PLATFORM_NOTICES)
    ]
    assert not bad, f"Qt warnings during the test: {bad}"


@pytest.fixture
def home_with_store(store_template: Path, hearth_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HEARTH_HOME holding a passphrase-custody store; HEARTH_PASSPHRASE unset (the GUI must ask)."""
    shutil.copytree(store_template, hearth_home, dirs_exist_ok=True)
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    return hearth_home


@pytest.fixture
def passphrase() -> str:
    return PASSPHRASE


@pytest.fixture
def make_window(qtbot: Any) -> Any:
    """A factory: (services, session, window) shown but not started; the test shuts them down."""
    return lambda: build(qtbot)


def build(qtbot: Any) -> tuple[Any, Any, Any]:
    from desktop.services import Services
    from desktop.ui.app import build_window, make_app
    from storage.offline import ensure_offline

    ensure_offline()  # as `hearth` does first: the embedding model must never reach for the network
    make_app()
    services = Services(threads=2)  # the test machine is small and shared
    session, window = build_window(services)
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    return services, session, window


@pytest.fixture
def app(home_with_store: Path, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An unlocked window with the model loaded: `app.window`, `app.session`, `app.services`."""
    monkeypatch.setenv("HEARTH_PASSPHRASE", PASSPHRASE)
    services, session, window = build(qtbot)
    session.chats.temperature, session.chats.seed, session.chats.max_tokens = 0.0, 1, 24
    with qtbot.waitSignal(session.engine_did_load, timeout=LOAD_TIMEOUT_MS):
        window.start()
    handle = type("App", (), {"window": window, "session": session, "services": services})
    yield handle
    # A test that failed mid-run may leave a job marked running: closing must not wait on the modal question.
    window.ask_keep_training = lambda: "keep"
    session.shutdown()
    services.close()


@pytest.fixture
def store_call() -> Any:
    """store_call(session, fn): fn(store) run on the store worker and waited for (tests only)."""
    return lambda session, fn: session.store_worker.call(lambda: fn(session.services.store()))
