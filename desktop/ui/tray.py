"""Hearth's life outside the window: a tray icon saying what it is doing (idle, indexing, learning with a
percentage) and a desktop notification when personalization finishes, with the gain it measured.

The text is computed here whether or not the desktop has a tray (offscreen, some Wayland shells have
none), so the window and tests read the same status; the icon only shows it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QStyle, QSystemTrayIcon, QWidget

LEARNING_STATES = ("starting", "loading", "training", "evaluating")


def status_text(job: dict[str, Any], indexing: bool) -> str:
    """One line for the tray tooltip."""
    state = job.get("state")
    if job.get("alive") and state in LEARNING_STATES:
        if state == "training" and job.get("max_steps"):
            percent = 100 * int(job.get("step") or 0) / int(job["max_steps"])
            return f"Hearth: learning, {percent:.0f}%"
        return "Hearth: checking what it learned" if state == "evaluating" else "Hearth: getting ready to learn"
    if indexing:
        return "Hearth: indexing documents"
    return "Hearth: idle"


def finish_message(job: dict[str, Any]) -> str | None:
    """What the notification says when a run ends, with the measured gain; None: nothing worth a popup."""
    state = job.get("state")
    base, tuned = job.get("base_ppl"), job.get("adapter_ppl")
    measured = ""
    if base and tuned:
        measured = f" Perplexity on your held-out text: {base:.2f} → {tuned:.2f} ({100 * (tuned - base) / base:+.1f}%)."
    if state == "activated":
        return "Personalization finished: Hearth now uses what it learned." + measured
    if state == "kept":
        return "Personalization finished, but the result was not better, so Hearth kept the model it had." + measured
    if state == "failed":
        return f"Personalization stopped: {job.get('error') or 'see the Personalize tab'}"
    return None


class Tray:
    def __init__(self, window: QWidget) -> None:
        self.text = "Hearth: idle"
        self.last_notification: str | None = None
        self._indexing = False
        self._job: dict[str, Any] = {}
        self.icon: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            image = window.windowIcon()
            if image.isNull():
                image = window.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
            self.icon = QSystemTrayIcon(QIcon(image), window)
            self.icon.setToolTip(self.text)
            self.icon.activated.connect(lambda _: (window.showNormal(), window.raise_(), window.activateWindow()))
            self.icon.show()

    def show_job(self, job: dict[str, Any]) -> None:
        self._job = job
        self._update()

    def set_indexing(self, indexing: bool) -> None:
        self._indexing = indexing
        self._update()

    def job_did_finish(self, job: dict[str, Any]) -> None:
        message = finish_message(job)
        if message is None:
            return
        self.last_notification = message
        if self.icon is not None:
            self.icon.showMessage("Hearth", message)

    def _update(self) -> None:
        self.text = status_text(self._job, self._indexing)
        if self.icon is not None:
            self.icon.setToolTip(self.text)
