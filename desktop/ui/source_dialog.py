"""The passage a cited source points at, shown where it came from: file, page or section, and the text.

Clicking "[2] report.pdf (p. 3)" under an answer opens this dialog instead of the bare file: the user sees
the exact passage the answer drew on, with its page, section heading or mail message, and "Open file"
opens the document itself (a PDF at that page, for viewers that honour `#page=`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


def source_url(source: dict[str, Any]) -> QUrl:
    """The file's URL; a PDF's carries `#page=N` (Firefox, Chromium, Okular and macOS Preview open there)."""
    url = QUrl.fromLocalFile(str(source.get("path") or source.get("source") or ""))
    if source.get("page"):
        url.setFragment(f"page={int(source['page'])}")
    return url


class SourceDialog(QDialog):
    def __init__(self, parent: QWidget | None, source: dict[str, Any]) -> None:
        super().__init__(parent)
        self.setObjectName("sourceDialog")
        path = str(source.get("path") or source.get("source") or "")
        name = path.replace("\\", "/").rsplit("/", 1)[-1] or "source"
        self.setWindowTitle(f"Source [{source.get('n', '')}] — {name}")
        layout = QVBoxLayout(self)
        self.place = QLabel(f"<b>{_escape(name)}</b> · {_escape(str(source.get('location') or 'whole file'))}")
        self.place.setObjectName("sourcePlace")
        layout.addWidget(self.place)
        where = QLabel(_escape(path))
        where.setWordWrap(True)
        layout.addWidget(where)
        self.passage = QPlainTextEdit(str(source.get("excerpt") or "(this answer was saved before passages were kept)"))
        self.passage.setObjectName("sourcePassage")
        self.passage.setReadOnly(True)
        self.passage.setAccessibleName("cited passage")
        layout.addWidget(self.passage, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = QPushButton("Open file")
        self.open_button.clicked.connect(lambda: QDesktopServices.openUrl(source_url(source)))
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 380)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
