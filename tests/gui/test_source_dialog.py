"""A cited source under an answer opens the passage at its place: page or section, and its text."""

from __future__ import annotations

from typing import Any

from desktop.ui.chat_view import MessageWidget
from desktop.ui.source_dialog import source_url


def test_clicking_a_source_shows_the_passage_where_it_came_from(qtbot: Any) -> None:
    message = MessageWidget("assistant", "The valve was replaced [2].")
    qtbot.addWidget(message)
    sources = [
        {"n": 1, "source": "/home/me/notes.md", "location": "Boiler > Service", "page": None, "excerpt": "Serviced."},
        {"n": 2, "source": "/home/me/scan.pdf", "location": "p. 3 (OCR)", "page": 3, "excerpt": "pressure valve"},
    ]
    message.set_sources(sources)
    assert "scan.pdf" in message.sources.text() and "p. 3 (OCR)" in message.sources.text()
    message.sources.linkActivated.emit("source:1")
    dialog = message.source_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert "scan.pdf" in dialog.place.text() and "p. 3 (OCR)" in dialog.place.text()
    assert dialog.passage.toPlainText() == "pressure valve"
    assert source_url(sources[1]).toString() == "file:///home/me/scan.pdf#page=3"
    assert source_url(sources[0]).toString() == "file:///home/me/notes.md"
    dialog.reject()
    message.sources.linkActivated.emit("source:0")
    assert message.source_dialog.passage.toPlainText() == "Serviced."
    message.source_dialog.reject()
