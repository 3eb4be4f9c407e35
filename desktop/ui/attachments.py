"""Files attached to the open chat: the chips above the composer, drag and drop, and the work behind them.

`ChatAttachments` is the model: it parses a dropped or chosen file on its own worker (the parser child can
take up to its 60 s limit on a big PDF; chat saves must not wait behind it), keeps it pending while the chat
has no conversation yet (the first message saves it, through `Conversation`), saves it at once otherwise,
and reloads the list when a conversation opens or a reply created one. "Add to library" indexes the file
from where it was attached, like the Documents tab does; nothing else ever adds it there.

`AttachmentBar` shows one chip per file (name, size, remove, add to library); `FileDrop` makes a widget
accept local files dropped on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QToolButton, QWidget

from desktop.engine.executor import Executor
from desktop.ui import theme
from desktop.ui.workers import Worker

if TYPE_CHECKING:
    from desktop.ui.session import ChatSession
    from desktop.ui.session.chats import ChatsFeature


class ChatAttachments(QObject):
    """The open chat's attachments (`session.chats.attachments`): `chats` is the open conversation and its
    signals, `session` the store worker and the status messages."""

    attachments_did_change = Signal(list)  # summaries: storage.attachments.Attachment.summary()
    attach_will_start = Signal(str)  # a file name, while it parses

    def __init__(self, session: ChatSession, chats: ChatsFeature) -> None:
        super().__init__(chats)
        self.session = session
        self.chats = chats
        self._executor = Executor("files")
        self.worker = Worker(self._executor)
        self._parser: Any = None  # one parser child for the window's life, started on first use
        self.pending: list[Any] = []  # read, waiting for the conversation the first message creates
        self.shown: list[dict[str, Any]] = []
        self._embedder: Any = None
        chats.conversation_did_open.connect(self._on_open)
        chats.generation_did_finish.connect(lambda _: self.reload())

    def embedder(self) -> Any:
        """One MiniLM for every reply of the window (loaded only when files do not fit the prompt whole)."""
        if self._embedder is None:
            from storage.embeddings import Embedder

            self._embedder = Embedder()
        return self._embedder

    def take_pending(self) -> list[Any]:
        """For the reply about to start: what it must save with the conversation it creates."""
        pending, self.pending = self.pending, []
        return pending

    def attach(self, paths: list[str]) -> None:
        for path in paths:
            self.attach_will_start.emit(Path(path).name)
            fail = self.session.action_did_fail.emit
            self.worker.submit(self._read, Path(path), on_done=self._on_read, on_error=fail)

    def _read(self, path: Path) -> Any:
        from storage import attachments
        from storage.parsers.worker import ParserProcess

        if self._parser is None:
            self._parser = ParserProcess()
        return attachments.read(path, self._parser)

    def _on_read(self, attachment: Any) -> None:
        if any(a["sha256"] == attachment.sha256 for a in self.shown):
            self.session.action_did_succeed.emit(f"{attachment.name} is already attached to this chat")
            return
        cid = self.chats.conversation_id
        if cid is None:
            self.pending.append(attachment)
            self._show([*self.shown, attachment.summary()])
            self.session.action_did_succeed.emit(f"Attached {attachment.name}: it is sent with your first message")
            return
        self.session.store_worker.submit(
            lambda: self.session.store().attachments.add(cid, attachment),
            on_done=lambda _: self._saved(attachment.name),
            on_error=self.session.action_did_fail.emit,
        )

    def _saved(self, name: str) -> None:
        self.session.action_did_succeed.emit(f"Attached {name} to this chat")
        self.reload()

    def remove(self, sha256: str) -> None:
        kept = [a for a in self.pending if a.sha256 != sha256]
        if len(kept) != len(self.pending):
            self.pending = kept
            self._show([a for a in self.shown if a["sha256"] != sha256])
            return
        chosen = next((a for a in self.shown if a["sha256"] == sha256), None)
        if chosen is None or chosen.get("id") is None:
            return
        self.session.store_worker.submit(
            lambda: self.session.store().attachments.remove(chosen["id"]),
            on_done=lambda _: self._removed(chosen["name"]),
            on_error=self.session.action_did_fail.emit,
        )

    def _removed(self, name: str) -> None:
        self.session.action_did_succeed.emit(f"Removed {name} from this chat")
        self.reload()

    def add_to_library(self, sha256: str) -> None:
        """Index the file into the document library from where it was attached (the user asked)."""
        chosen = next((a for a in self.shown if a["sha256"] == sha256), None)
        if chosen is None:
            return
        source = Path(chosen["source"])
        if not source.is_file():
            self.session.action_did_fail.emit(
                f"{chosen['name']} is no longer at {source.parent}; add it from the Documents tab"
            )
            return
        self.session.documents.add([str(source)])
        self.session.action_did_succeed.emit(f"Adding {chosen['name']} to your documents")

    def reload(self) -> None:
        cid = self.chats.conversation_id
        if cid is None or not self.session.store_ready:
            return
        self.session.store_worker.submit(
            lambda: (cid, self.session.store().attachments.list(cid)),
            on_done=self._on_list,
            on_error=self.session.action_did_fail.emit,
        )

    def _on_list(self, result: tuple[int, list[dict[str, Any]]]) -> None:
        cid, listed = result
        if cid == self.chats.conversation_id:  # not a list for a chat the user already left
            self._show([*listed, *(a.summary() for a in self.pending)])

    def _on_open(self, conversation: dict[str, Any]) -> None:
        self.pending = []
        self._show([])
        if conversation.get("id") is not None:
            self.reload()

    def _show(self, summaries: list[dict[str, Any]]) -> None:
        self.shown = summaries
        self.attachments_did_change.emit(summaries)

    def close(self) -> None:
        self.worker.close()
        self._executor.close()  # after the file being read, if any; then the parser child is no one's
        if self._parser is not None:
            self._parser.close()


def describe(summary: dict[str, Any]) -> str:
    """ "pdf, 12,345 characters" for a chip's tooltip."""
    return f"{summary['kind']}, {summary['chars']:,} characters"


class AttachmentChip(QWidget):
    """One attached file: its name (elided), a menu with "Add to library", and a remove button."""

    chip_will_remove = Signal(str)  # sha256
    chip_will_add_to_library = Signal(str)

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary
        self.setObjectName("attachmentChip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        name = summary["name"]
        self.setToolTip(f"{name}: {describe(summary)}, used in this chat only")
        row = QHBoxLayout(self)
        row.setContentsMargins(theme.SPACE["s"], 2, 2, 2)
        row.setSpacing(theme.SPACE["xs"])
        self.label = QLabel()
        self.label.setObjectName("attachmentName")
        metrics = self.label.fontMetrics()
        self.label.setText(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, metrics.averageCharWidth() * 28))
        self.label.setAccessibleName(f"Attached file {name}")
        row.addWidget(self.label)
        self.more = QToolButton()
        self.more.setText("\u22ef")
        self.more.setAutoRaise(True)
        self.more.setAccessibleName(f"More for {name}")
        self.more.setToolTip("More")
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more)
        self.library_action = menu.addAction("Add to library", lambda: self.chip_will_add_to_library.emit(self.key))
        self.library_action.setToolTip("Index this file in your documents, for every chat")
        self.more.setMenu(menu)
        row.addWidget(self.more)
        self.remove_button = QToolButton()
        self.remove_button.setText("\u00d7")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setAccessibleName(f"Remove {name}")
        self.remove_button.setToolTip("Remove from this chat")
        self.remove_button.clicked.connect(lambda: self.chip_will_remove.emit(self.key))
        row.addWidget(self.remove_button)

    @property
    def key(self) -> str:
        return str(self.summary["sha256"])


class AttachmentBar(QWidget):
    """The chips row above the composer; hidden while the chat has no attachments."""

    attachment_will_remove = Signal(str)
    attachment_will_add_to_library = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("attachmentBar")
        self.setAccessibleName("Files attached to this chat")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(theme.SPACE["s"])
        self.caption = QLabel("In this chat:")
        self.caption.setObjectName("messageNote")
        theme.set_type(self.caption, "caption")
        self._row.addWidget(self.caption)
        self._row.addStretch(1)
        self.chips: list[AttachmentChip] = []
        self.hide()

    def show_attachments(self, summaries: list[dict[str, Any]]) -> None:
        for chip in self.chips:
            self._row.removeWidget(chip)
            chip.hide()
            chip.deleteLater()
        self.chips = []
        for summary in summaries:
            chip = AttachmentChip(summary)
            chip.chip_will_remove.connect(self.attachment_will_remove.emit)
            chip.chip_will_add_to_library.connect(self.attachment_will_add_to_library.emit)
            self._row.insertWidget(self._row.count() - 1, chip)
            self.chips.append(chip)
        self.setVisible(bool(summaries))


def attach_button() -> QPushButton:
    button = QPushButton("Attach file\u2026")
    button.setObjectName("attachButton")
    button.setFlat(True)
    button.setAccessibleName("Attach a file to this chat")
    button.setToolTip("Attach a file to this chat only (or drop it on the chat); it is not added to your documents")
    return button


class FileDrop(QObject):
    """Makes `target` accept local files dropped on it: `files_did_drop` carries their paths."""

    files_did_drop = Signal(list)

    def __init__(self, target: QWidget) -> None:
        super().__init__(target)
        target.setAcceptDrops(True)
        target.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDropEvent)  # QDragEnterEvent and QDragMoveEvent derive from it
            if _local_files(event):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            files = _local_files(event)
            if files:
                event.acceptProposedAction()
                self.files_did_drop.emit(files)
                return True
        return False


def _local_files(event: QDropEvent) -> list[str]:
    data = event.mimeData()
    if not data.hasUrls():
        return []
    return [url.toLocalFile() for url in data.urls() if url.isLocalFile() and Path(url.toLocalFile()).is_file()]
