"""First-run onboarding, driven as a new user would: the promise and what personalization does, a passphrase
(no keychain here), a model found in an Ollama store under a temporary HOME, a folder, then the chat; the
next launch goes straight to unlocking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.model_homes import OLLAMA_NAME, make_home_with_models

LOAD_TIMEOUT_MS = 120_000
PASSPHRASE = "a long enough passphrase"


def test_first_run_onboarding_then_never_again(
    qtbot: Any,
    hearth_home: Path,
    tmp_path: Path,
    bundled_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_window: Any,
) -> None:
    from PySide6.QtWidgets import QLabel

    from desktop.engine.models import active_model
    from desktop.ui import onboarding
    from desktop.ui.dialogs import PRIVACY_PROMISE

    make_home_with_models(tmp_path / "home", bundled_model, monkeypatch)
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "garden.md").write_text("# Garden\n\nThe tomatoes go in the south bed in May.\n")
    services, session, window = make_window()
    try:
        steps = window.welcome
        assert window.pages.currentWidget() is steps and steps.steps.currentIndex() == 0
        assert steps.findChild(QLabel, "privacyPromise").text() == PRIVACY_PROMISE
        note = steps.findChild(QLabel, "personalizationNote").text()
        assert note == onboarding.PERSONALIZATION and "never leave this machine" in note

        with qtbot.waitSignal(session.passphrase.passphrase_will_ask, timeout=10_000) as asked:
            steps.start_button.click()
        assert asked.args == [True]  # no keychain: choose a passphrase
        qtbot.waitUntil(lambda: window.unlock_dialog is not None and window.unlock_dialog.isVisible())
        dialog = window.unlock_dialog
        dialog.passphrase.setText(PASSPHRASE)
        dialog.repeat.setText(PASSPHRASE)
        with qtbot.waitSignal(steps.picker.picker_did_refresh, timeout=LOAD_TIMEOUT_MS):
            dialog._check()
        assert steps.steps.currentIndex() == 1 and window.pages.currentWidget() is steps
        assert steps.custody_note.text() == onboarding.CUSTODY["passphrase"]
        assert onboarding.needed()  # closed now, the next launch would resume here

        picker = steps.picker
        qtbot.waitUntil(lambda: session.engine_ready, timeout=LOAD_TIMEOUT_MS)  # the bundled model first
        with qtbot.waitSignal(session.engine_did_load, timeout=LOAD_TIMEOUT_MS) as loaded:
            picker.button_for(picker.found, OLLAMA_NAME).click()
        assert loaded.args == [OLLAMA_NAME] and active_model().name == OLLAMA_NAME
        qtbot.waitUntil(lambda: picker.button_for(picker.registered, OLLAMA_NAME).text() == "In use")

        steps.model_next.click()
        assert steps.steps.currentIndex() == 2
        with qtbot.waitSignal(session.documents.ingest_did_finish, timeout=LOAD_TIMEOUT_MS) as ingested:
            steps.add_folder(str(docs))
        assert ingested.args[0].counts()["added"] == 1
        steps.finish_button.click()
        assert window.pages.currentIndex() == 1 and not onboarding.needed()
    finally:
        session.shutdown()
        services.close()

    monkeypatch.setenv("HEARTH_PASSPHRASE", PASSPHRASE)
    services, session, window = make_window()
    try:
        assert window.pages.currentIndex() == 1  # a later launch: no onboarding
        with qtbot.waitSignal(session.store_did_open, timeout=LOAD_TIMEOUT_MS):
            window.start()
        assert window.pages.currentIndex() == 1
    finally:
        session.shutdown()
        services.close()
