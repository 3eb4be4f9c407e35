"""The conversation list: new chat, search across every chat (Ctrl+K), rename and delete."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MARK_START, MARK_END = "\u2063", "\u2064"  # invisible marks around search hits, made bold after escaping
SEARCH_DELAY_MS = 200


class Sidebar(QWidget):
    chat_will_create = Signal()
    conversation_will_open = Signal(int)
    conversation_will_rename = Signal(int, str)
    conversation_will_delete = Signal(int)
    search_will_run = Signal(str)
    settings_will_open = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("sidebar")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.new_button = QPushButton("+  New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(self.chat_will_create.emit)
        layout.addWidget(self.new_button)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search all chats (Ctrl+K)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self._on_search_text)
        layout.addWidget(self.search_box)
        self.list = QListWidget()
        self.list.setObjectName("conversationList")
        self.list.setWordWrap(True)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._open_item)
        self.list.itemClicked.connect(self._open_item)
        layout.addWidget(self.list, 1)
        self.settings_button = QPushButton("Settings")
        self.settings_button.clicked.connect(self.settings_will_open.emit)
        layout.addWidget(self.settings_button)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search_will_run.emit(self.search_box.text().strip()))
        self._conversations: list[dict[str, Any]] = []
        self.current_id: int | None = None
        self.searching = False

    # -- conversations --------------------------------------------------------------------------------

    def show_conversations(self, conversations: list[dict[str, Any]]) -> None:
        self._conversations = conversations
        if not self.searching:
            self._fill_conversations()

    def _fill_conversations(self) -> None:
        self.list.clear()
        for conversation in self._conversations:
            item = QListWidgetItem(conversation["title"] or "Untitled")
            item.setData(Qt.ItemDataRole.UserRole, conversation["id"])
            item.setToolTip(f"{conversation['message_count']} messages · {conversation['updated'][:16]}")
            self.list.addItem(item)
            if conversation["id"] == self.current_id:
                item.setSelected(True)
                self.list.setCurrentItem(item)

    def select(self, conversation_id: int | None) -> None:
        self.current_id = conversation_id
        if self.searching:
            return
        self.list.clearSelection()
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentItem(item)

    def titles(self) -> list[str]:
        return [self.list.item(row).text() for row in range(self.list.count())]

    # -- search ---------------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    def _on_search_text(self, text: str) -> None:
        if text.strip():
            self._search_timer.start()
        else:
            self._search_timer.stop()
            self.searching = False
            self._fill_conversations()

    def show_search_results(self, query: str, hits: list[dict[str, Any]]) -> None:
        if query != self.search_box.text().strip():
            return  # an older query's answer
        self.searching = True
        self.list.clear()
        if not hits:
            item = QListWidgetItem("No chats match")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(item)
            return
        seen: set[int] = set()
        for hit in hits:
            if hit["conversation_id"] in seen:
                continue  # one row per conversation, with its best snippet
            seen.add(hit["conversation_id"])
            snippet = " ".join(hit["snippet"].split())
            plain = snippet.replace(MARK_START, "").replace(MARK_END, "")
            item = QListWidgetItem(f"{hit['title'] or 'Untitled'}\n{plain}")
            rich = html.escape(snippet).replace(MARK_START, "<b>").replace(MARK_END, "</b>")
            item.setToolTip(rich)
            item.setData(Qt.ItemDataRole.UserRole, hit["conversation_id"])
            self.list.addItem(item)

    # -- items ----------------------------------------------------------------------------------------

    def _open_item(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        if conversation_id is not None and conversation_id != self.current_id:
            self.conversation_will_open.emit(int(conversation_id))

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(Qt.ItemDataRole.UserRole) is None:
            return
        conversation_id = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.ask_rename(conversation_id, item.text().split("\n")[0]))
        menu.addAction("Delete…", lambda: self.ask_delete(conversation_id))
        menu.exec(self.list.mapToGlobal(pos))

    def ask_rename(self, conversation_id: int, current: str) -> None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=current)
        if ok and title.strip():
            self.conversation_will_rename.emit(conversation_id, title)

    def ask_delete(self, conversation_id: int) -> None:
        answer = QMessageBox.question(
            self,
            "Delete conversation",
            "Delete this conversation and all its messages? This cannot be undone.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.conversation_will_delete.emit(conversation_id)
