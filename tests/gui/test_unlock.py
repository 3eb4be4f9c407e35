"""Unlocking a passphrase-protected store through the dialog, and the first-run welcome page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _dialog(qtbot: Any, window: Any, previous: Any = None) -> Any:
    """The unlock dialog once it shows (it is opened by a queued slot after the store worker asks)."""
    qtbot.waitUntil(lambda: window.unlock_dialog not in (None, previous) and window.unlock_dialog.isVisible())
    return window.unlock_dialog


def test_wrong_then_right_passphrase_unlocks(
    qtbot: Any, home_with_store: Path, make_window: Any, passphrase: str
) -> None:
    services, session, window = make_window()
    try:
        with qtbot.waitSignal(session.passphrase.passphrase_will_ask, timeout=10_000) as asked:
            window.start()
        assert asked.args == [False]
        dialog = _dialog(qtbot, window)
        dialog.passphrase.setText("not the passphrase")
        with qtbot.waitSignal(session.passphrase.passphrase_will_ask, timeout=10_000):
            dialog.accept()  # the store says "wrong passphrase": asked again, with the reason shown
        again = _dialog(qtbot, window, previous=dialog)
        assert "Wrong passphrase" in again.error.text()
        again.passphrase.setText(passphrase)
        with qtbot.waitSignal(session.store_did_open, timeout=10_000):
            again.accept()
        assert session.store_ready and window.send_button.isEnabled()
    finally:
        session.shutdown()
        services.close()


def test_first_run_shows_the_promise_then_sets_a_passphrase(
    qtbot: Any, hearth_home: Path, monkeypatch: pytest.MonkeyPatch, make_window: Any
) -> None:
    from PySide6.QtWidgets import QLabel

    from desktop.ui.dialogs import PRIVACY_PROMISE

    monkeypatch.setenv("HEARTH_KEYRING", "0")
    services, session, window = make_window()
    try:
        assert window.pages.currentWidget() is window.welcome
        assert window.welcome.findChild(QLabel, "privacyPromise").text() == PRIVACY_PROMISE
        with qtbot.waitSignal(session.passphrase.passphrase_will_ask, timeout=10_000) as asked:
            window.welcome.start_button.click()
        assert asked.args == [True]
        dialog = _dialog(qtbot, window)
        dialog.passphrase.setText("short")
        dialog.repeat.setText("short")
        dialog._check()
        assert dialog.isVisible() and "at least" in dialog.error.text()
        dialog.passphrase.setText("a long enough passphrase")
        dialog.repeat.setText("a long enough passphrase")
        with qtbot.waitSignal(session.store_did_open, timeout=20_000):
            dialog._check()
        assert (hearth_home / "key.json").exists()
    finally:
        session.shutdown()
        services.close()
