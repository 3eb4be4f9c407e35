"""The conversation list: new chat, search across every chat (Ctrl+K), pins, folders, rename, delete.

Rows are one line, elided, grouped: Pinned, then each folder, then by last activity (Today, Yesterday,
Previous 7 days, Older). Group headers are disabled rows, so the keyboard skips them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import theme

MARK_START, MARK_END = "\u2063", "\u2064"  # invisible marks around search hits, made bold after escaping
SEARCH_DELAY_MS = 200
DATE_GROUPS = ("Today", "Yesterday", "Previous 7 days", "Older")
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1  # a search hit's message id


def date_group(updated: str, today: date) -> str:
    """Which date heading a conversation last active at `updated` (ISO UTC) falls under, in local time."""
    when = datetime.fromisoformat(updated.replace("Z", "+00:00")).astimezone().date()
    if when >= today:
        return "Today"
    if when == today - timedelta(days=1):
        return "Yesterday"
    if when > today - timedelta(days=8):
        return "Previous 7 days"
    return "Older"


def group_conversations(
    conversations: Iterable[dict[str, Any]], today: date | None = None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(heading, conversations) in display order; empty groups are left out. Input is newest first."""
    today = today or date.today()
    pinned: list[dict[str, Any]] = []
    folders: dict[str, list[dict[str, Any]]] = {}
    dated: dict[str, list[dict[str, Any]]] = {name: [] for name in DATE_GROUPS}
    for conversation in conversations:
        if conversation.get("pinned"):
            pinned.append(conversation)
        elif conversation.get("folder"):
            folders.setdefault(conversation["folder"], []).append(conversation)
        else:
            dated[date_group(conversation["updated"], today)].append(conversation)
    groups = [("Pinned", pinned), *sorted(folders.items(), key=lambda kv: kv[0].casefold())]
    groups += [(name, dated[name]) for name in DATE_GROUPS]
    return [(name, items) for name, items in groups if items]


class Sidebar(QWidget):
    chat_will_create = Signal()
    conversation_will_open = Signal(int)
    search_hit_will_open = Signal(int, int, str)  # conversation id, message id, the query
    conversation_will_rename = Signal(int, str)
    conversation_will_delete = Signal(int)
    conversation_will_pin = Signal(int, bool)
    conversation_will_file = Signal(int, str)  # folder ("" takes it out)
    search_will_run = Signal(str)
    settings_will_open = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("sidebar")
        self.setMinimumWidth(theme.SIDEBAR_MIN_WIDTH)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        space = theme.SPACE
        layout = QVBoxLayout(self)
        layout.setContentsMargins(space["s"], space["m"], space["s"], space["s"])
        layout.setSpacing(space["s"])
        self.new_button = QPushButton("+  New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.setAccessibleName("New chat")
        self.new_button.clicked.connect(self.chat_will_create.emit)
        layout.addWidget(self.new_button)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search chats (Ctrl+K)")
        self.search_box.setAccessibleName("Search all chats")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self._on_search_text)
        layout.addWidget(self.search_box)
        self.list = QListWidget()
        self.list.setObjectName("conversationList")
        self.list.setAccessibleName("Conversations")
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._open_item)
        self.list.itemClicked.connect(self._open_item)
        layout.addWidget(self.list, 1)
        self.settings_button = QPushButton("Settings")
        self.settings_button.setAccessibleName("Settings")
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
        for heading, conversations in group_conversations(self._conversations):
            self._add_header(heading)
            for conversation in conversations:
                item = QListWidgetItem(" ".join((conversation["title"] or "Untitled").split()))
                item.setData(Qt.ItemDataRole.UserRole, conversation["id"])
                item.setToolTip(
                    f"{html.escape(conversation['title'] or 'Untitled')}<br>"
                    f"{conversation['message_count']} messages · {conversation['updated'][:16].replace('T', ' ')}"
                )
                self.list.addItem(item)
                if conversation["id"] == self.current_id:
                    self.list.setCurrentItem(item)

    def _add_header(self, text: str) -> None:
        item = QListWidgetItem(text.upper() if text in DATE_GROUPS or text == "Pinned" else text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        item.setFont(theme.scaled_font(self.list.font(), "caption", bold=True))
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{text} group")
        self.list.addItem(item)

    def conversation(self, conversation_id: int) -> dict[str, Any] | None:
        return next((c for c in self._conversations if c["id"] == conversation_id), None)

    def folders(self) -> list[str]:
        return sorted({c["folder"] for c in self._conversations if c.get("folder")}, key=str.casefold)

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
        """Conversation rows only (no headers), in display order."""
        return [item.text() for item in self._rows()]

    def headings(self) -> list[str]:
        return [
            self.list.item(row).text()
            for row in range(self.list.count())
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) is None
        ]

    def _rows(self) -> list[QListWidgetItem]:
        items = (self.list.item(row) for row in range(self.list.count()))
        return [item for item in items if item.data(Qt.ItemDataRole.UserRole) is not None]

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
            item = QListWidgetItem(f"{' '.join((hit['title'] or 'Untitled').split())}\n{plain}")
            rich = html.escape(snippet).replace(MARK_START, "<b>").replace(MARK_END, "</b>")
            item.setToolTip(rich)
            item.setData(Qt.ItemDataRole.UserRole, hit["conversation_id"])
            item.setData(MESSAGE_ROLE, hit["message_id"])
            self.list.addItem(item)

    # -- items ----------------------------------------------------------------------------------------

    def _open_item(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        if conversation_id is None:
            return
        if self.searching and item.data(MESSAGE_ROLE) is not None:
            self.search_hit_will_open.emit(int(conversation_id), int(item.data(MESSAGE_ROLE)), self.query())
        elif conversation_id != self.current_id:
            self.conversation_will_open.emit(int(conversation_id))

    def query(self) -> str:
        return self.search_box.text().strip()

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(Qt.ItemDataRole.UserRole) is None:
            return
        menu = self.menu_for(int(item.data(Qt.ItemDataRole.UserRole)))
        menu.exec(self.list.mapToGlobal(pos))
        menu.deleteLater()

    def menu_for(self, conversation_id: int) -> QMenu:
        """The conversation's context menu (a method, so tests can trigger its actions)."""
        conversation = self.conversation(conversation_id) or {"title": "", "pinned": False, "folder": ""}
        menu = QMenu(self)
        pinned = bool(conversation.get("pinned"))
        menu.addAction(
            "Unpin" if pinned else "Pin", lambda: self.conversation_will_pin.emit(conversation_id, not pinned)
        )
        folders = QMenu("Move to folder", menu)  # parented: a menu from addMenu(str) dies with its wrapper
        menu.addMenu(folders)
        for folder in self.folders():
            if folder != conversation.get("folder"):
                folders.addAction(folder, partial(self.conversation_will_file.emit, conversation_id, folder))
        folders.addAction("New folder…", lambda: self.ask_folder(conversation_id))
        if conversation.get("folder"):
            menu.addAction("Remove from folder", lambda: self.conversation_will_file.emit(conversation_id, ""))
        menu.addSeparator()
        menu.addAction("Rename…", lambda: self.ask_rename(conversation_id, conversation["title"]))
        menu.addAction("Delete", lambda: self.conversation_will_delete.emit(conversation_id))
        return menu

    def ask_rename(self, conversation_id: int, current: str) -> None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=current)
        if ok and title.strip():
            self.conversation_will_rename.emit(conversation_id, title)

    def ask_folder(self, conversation_id: int) -> None:
        name, ok = QInputDialog.getText(self, "New folder", "Folder name:")
        if ok and name.strip():
            self.conversation_will_file.emit(conversation_id, name)
