"""Keyboard shortcuts, declared once: the window binds them from `SHORTCUTS` and the help overlay (F1 or
Ctrl+/) lists the same table, so the two can never disagree."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.ui import theme

# (action name, key sequences, what it does); the window supplies a callable per action name.
SHORTCUTS: list[tuple[str, tuple[str, ...], str]] = [
    ("new_chat", ("Ctrl+N",), "New chat"),
    ("search", ("Ctrl+K",), "Search all chats"),
    ("focus_input", ("Ctrl+L",), "Focus the message box"),
    ("stop", ("Esc",), "Stop the answer (or cancel an edit)"),
    ("undo_delete", ("Ctrl+Z",), "Undo deleting a chat"),
    ("chat_tab", ("Ctrl+1",), "Chat tab"),
    ("documents_tab", ("Ctrl+2",), "Documents tab"),
    ("personalize_tab", ("Ctrl+3",), "Personalize tab"),
    ("help", ("F1", "Ctrl+/"), "Show these shortcuts"),
]
COMPOSER_KEYS = [("Enter", "Send"), ("Shift+Enter", "New line")]


def bind(window: QWidget, actions: dict[str, Callable[[], None]]) -> list[QShortcut]:
    """One QShortcut per key sequence; every name in SHORTCUTS must have an action."""
    bound = []
    for name, keys, _ in SHORTCUTS:
        for key in keys:
            shortcut = QShortcut(QKeySequence(key), window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(actions[name])
            bound.append(shortcut)
    return bound


class HelpOverlay(QFrame):
    """A card over the window listing the shortcuts; Esc, F1 or a click on Close hides it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("helpOverlay")
        self.setAccessibleName("Keyboard shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        space = theme.SPACE
        column = QVBoxLayout(self)
        column.setContentsMargins(space["xl"], space["l"], space["xl"], space["l"])
        title = QLabel("Keyboard shortcuts")
        theme.set_type(title, "title", bold=True)
        column.addWidget(title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(space["xl"])
        grid.setVerticalSpacing(space["xs"])
        rows = [
            (" or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in keys), text)
            for _, keys, text in SHORTCUTS
        ]
        for row, (keys, text) in enumerate([*rows, *COMPOSER_KEYS]):
            key_label = QLabel(keys)
            theme.set_type(key_label, "body", bold=True)
            grid.addWidget(key_label, row, 0)
            grid.addWidget(QLabel(text), row, 1)
        column.addLayout(grid)
        close = QPushButton("Close")
        close.clicked.connect(self.hide)
        column.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        self.adjustSize()
        parent = self.parentWidget()
        self.move((parent.width() - self.width()) // 2, (parent.height() - self.height()) // 3)
        self.show()
        self.raise_()
        self.setFocus()

    def rows(self) -> list[str]:
        return [text for _, _, text in SHORTCUTS] + [text for _, text in COMPOSER_KEYS]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_F1):
            self.hide()
            return
        super().keyPressEvent(event)
