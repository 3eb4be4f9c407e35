"""The "Deleted … Undo" strip: a chat deleted from the sidebar can be brought back for a few seconds.

The chat is only trashed (storage.chats.Chats.trash) while the strip shows; when it times out, or a
second deletion replaces it, the window purges the trash. Expiry is one signal, so tests wait on it.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.ui import theme

UNDO_MS = 8_000


class UndoBar(QWidget):
    undo_will_run = Signal(int)  # the conversation to restore
    undo_did_expire = Signal(int)  # the conversation to delete for real

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("undoBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(theme.SPACE["s"], 0, theme.SPACE["xs"], 0)
        self.label = QLabel()
        row.addWidget(self.label)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setFlat(True)
        self.undo_button.setAccessibleName("Undo delete")
        self.undo_button.setToolTip("Bring the conversation back (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        row.addWidget(self.undo_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UNDO_MS)
        self._timer.timeout.connect(self.expire)
        self.conversation_id: int | None = None
        self.hide()

    def offer(self, conversation_id: int, title: str) -> None:
        self.expire()  # one undo at a time: the previous deletion becomes final
        self.conversation_id = conversation_id
        short = title if len(title) <= 40 else title[:39] + "…"
        self.label.setText(f"Deleted “{short or 'Untitled'}”")
        self.show()
        self._timer.start()

    def undo(self) -> None:
        if self.conversation_id is not None:
            conversation_id, self.conversation_id = self.conversation_id, None
            self._timer.stop()
            self.hide()
            self.undo_will_run.emit(conversation_id)

    def expire(self) -> None:
        if self.conversation_id is not None:
            conversation_id, self.conversation_id = self.conversation_id, None
            self._timer.stop()
            self.hide()
            self.undo_did_expire.emit(conversation_id)
