"""The conversation pane: message bubbles rendered from Markdown, and the composer under them.

Each message is a rich-text QLabel (selectable, links active) re-rendered from its Markdown source when
text streams in; only the last bubble changes while a reply streams, so a long chat costs nothing extra.
The view keeps following the newest text unless the user has scrolled up to read.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import markdown

ROLE_NAMES = {"user": "You", "assistant": "Hearth"}
STATUS_NOTES = {"interrupted": "Stopped", "error": "Failed", "streaming": "Interrupted"}


def palette_colors(widget: QWidget) -> markdown.Palette:
    pal = widget.palette()
    dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
    base = pal.color(QPalette.ColorRole.Base)
    code = base.darker(108) if not dark else base.lighter(135)
    border = pal.color(QPalette.ColorRole.Mid)
    return markdown.Palette(
        code_background=code.name(),
        code_border=border.name(),
        link=pal.color(QPalette.ColorRole.Link).name(),
        dark=dark,
    )


class MessageWidget(QFrame):
    """One message: who, the rendered text, and its actions (copy; regenerate on the last answer)."""

    regenerate_will_start = Signal()

    def __init__(self, role: str, text: str = "", status: str = "complete") -> None:
        super().__init__()
        self.role = role
        self.text = text
        self._code_blocks: list[str] = []
        self.setObjectName("assistantMessage" if role == "assistant" else "userMessage")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        who = QLabel(f"<b>{ROLE_NAMES.get(role, role.title())}</b>")
        layout.addWidget(who)
        self.body = QLabel()
        self.body.setObjectName("messageBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.body.setOpenExternalLinks(False)
        self.body.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.body.linkActivated.connect(self._on_link)
        layout.addWidget(self.body)
        self.sources = QLabel()
        self.sources.setObjectName("sourcesStrip")
        self.sources.setWordWrap(True)
        self.sources.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.sources.linkActivated.connect(self._open_source)
        self.sources.hide()
        layout.addWidget(self.sources)
        actions = QHBoxLayout()
        actions.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel()
        self.note.setObjectName("messageNote")
        actions.addWidget(self.note)
        actions.addStretch(1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setFlat(True)
        self.copy_button.clicked.connect(self.copy)
        actions.addWidget(self.copy_button)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setFlat(True)
        self.regenerate_button.clicked.connect(self.regenerate_will_start.emit)
        self.regenerate_button.hide()
        actions.addWidget(self.regenerate_button)
        layout.addLayout(actions)
        self.set_status(status)
        self._render()

    def append(self, delta: str) -> None:
        self.text += delta
        self._render()

    def _render(self) -> None:
        rendered = markdown.render(self.text or "…", palette_colors(self))
        self._code_blocks = rendered.code_blocks
        self.body.setText(rendered.html)

    def set_status(self, status: str, error: str | None = None) -> None:
        note = STATUS_NOTES.get(status, "")
        if error:
            note = f"{note}: {error}"
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        """Documents the answer drew on; a click opens the file (its page or section is named beside it)."""
        if not sources:
            self.sources.hide()
            return
        links = []
        for i, source in enumerate(sources, 1):
            path = str(source.get("path") or source.get("source") or "")
            name = path.replace("\\", "/").rsplit("/", 1)[-1] or "source"
            where = f" ({source['location']})" if source.get("location") else ""
            url = QUrl.fromLocalFile(path).toString()
            links.append(f'[{i}] <a href="{url}">{_escape(name)}</a>{_escape(where)}')
        self.sources.setText("Sources: " + " &nbsp; ".join(links))
        self.sources.show()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(markdown.plain_text(self.text))

    def _on_link(self, href: str) -> None:
        if href.startswith(f"{markdown.COPY_CODE_SCHEME}:"):
            index = int(href.split(":", 1)[1])
            if 0 <= index < len(self._code_blocks):
                QGuiApplication.clipboard().setText(self._code_blocks[index])
        elif href.startswith(("http://", "https://")):
            QDesktopServices.openUrl(QUrl(href))  # the user clicked it: their browser, their choice

    @staticmethod
    def _open_source(href: str) -> None:
        QDesktopServices.openUrl(QUrl(href))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ChatView(QScrollArea):
    """The list of messages of the open conversation."""

    regenerate_will_start = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("chatView")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self._layout = QVBoxLayout(inner)
        self._layout.setContentsMargins(16, 16, 16, 16)
        self._layout.setSpacing(10)
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setText(
            "<h2>Ask Hearth anything</h2><p>The model runs on this computer and your conversations are "
            "stored encrypted here. Nothing you type leaves this machine.</p>"
        )
        self._layout.addWidget(self.empty)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self.messages: list[MessageWidget] = []
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def clear(self) -> None:
        for widget in self.messages:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.messages = []
        self.empty.show()
        self._follow = True

    def show_messages(self, messages: list[dict[str, Any]]) -> None:
        self.clear()
        for message in messages:
            if message["role"] in ROLE_NAMES:
                self.add(message["role"], message["content"], message.get("status", "complete"))
        self._update_regenerate()

    def add(self, role: str, text: str = "", status: str = "complete") -> MessageWidget:
        widget = MessageWidget(role, text, status)
        widget.regenerate_will_start.connect(self.regenerate_will_start.emit)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.messages.append(widget)
        self.empty.hide()
        return widget

    def last_answer(self) -> MessageWidget | None:
        return self.messages[-1] if self.messages and self.messages[-1].role == "assistant" else None

    def set_busy(self, busy: bool) -> None:
        for widget in self.messages:
            widget.regenerate_button.setEnabled(not busy)
        self._update_regenerate()

    def _update_regenerate(self) -> None:
        for i, widget in enumerate(self.messages):
            widget.regenerate_button.setVisible(widget.role == "assistant" and i == len(self.messages) - 1)

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(high)

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24


class Composer(QPlainTextEdit):
    """The message box: Enter sends, Shift+Enter starts a new line."""

    message_will_send = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("composer")
        self.setPlaceholderText("Message Hearth  (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setMaximumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 16)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submit()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        text = self.toPlainText()
        if text.strip():
            self.message_will_send.emit(text)


class PaletteWatcher(QObject):
    """Re-renders bubbles when the OS switches between light and dark."""

    palette_did_change = Signal()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self.palette_did_change.emit()
        return False
