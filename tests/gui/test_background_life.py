"""Hearth while it works in the background: tray status, the notification when learning ends, and closing
the window while it learns. The job's status file is the real one (personalize.job), written here the way
the training process writes it, for a process that is alive (this one)."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QTimer

from desktop.ui.tray import finish_message, status_text
from tests.gui.test_window_look import window  # noqa: F401 (the fixture)


def learning(window: Any) -> None:  # noqa: F811 (the fixture's name)
    from personalize import job

    job.write_status(state="training", pid=os.getpid(), step=3, max_steps=12)
    window.session.personalization.poll()
    assert window.session.personalization.job_running


def answer_close(window: Any, button: str) -> None:  # noqa: F811
    def click() -> None:
        box = window.keep_training_box
        next(b for b in box.buttons() if b.text().replace("&", "") == button).click()

    QTimer.singleShot(0, click)
    window.close()


def test_tray_says_what_hearth_is_doing(window: Any) -> None:  # noqa: F811
    from storage.ingest import Progress, Summary

    assert window.tray.text == "Hearth: idle"
    window.session.documents.ingest_did_progress.emit(Progress(phase="index", done=1, total=4, rate=2.0, eta_s=1.5))
    assert window.tray.text == "Hearth: indexing documents"
    window.session.documents.ingest_did_finish.emit(Summary())
    assert window.tray.text == "Hearth: idle"
    learning(window)
    assert window.tray.text == "Hearth: learning, 25%"
    from personalize import job

    job.write_status(state="cancelled", pid=0)  # end it here: pytest-qt closes the window before fixtures end
    window.session.personalization.poll()
    assert window.tray.text == "Hearth: idle"


def test_finishing_notifies_with_the_measured_gain(window: Any) -> None:  # noqa: F811
    window.session.personalization.personalize_did_finish.emit(
        {"state": "activated", "base_ppl": 29.0, "adapter_ppl": 22.69}
    )
    assert window.tray.last_notification == (
        "Personalization finished: Hearth now uses what it learned. "
        "Perplexity on your held-out text: 29.00 → 22.69 (-21.8%)."
    )
    assert "kept the model it had" in finish_message({"state": "kept"})
    assert finish_message({"state": "paused"}) is None
    assert status_text({"state": "evaluating", "alive": True}, False) == "Hearth: checking what it learned"


def test_closing_while_learning_asks_and_can_pause(qtbot: Any, window: Any) -> None:  # noqa: F811
    from personalize import job

    learning(window)
    answer_close(window, "Cancel")
    assert window.isVisible() and job.requested() is None  # stays open, still learning
    answer_close(window, "Pause and close")
    assert not window.isVisible() and job.requested() == "pause"


def test_closing_while_learning_can_keep_it_going(qtbot: Any, window: Any) -> None:  # noqa: F811
    from personalize import job

    learning(window)
    answer_close(window, "Keep learning")
    assert not window.isVisible() and job.requested() is None
