"""The conversation pane: message bubbles rendered from Markdown, and the composer under them.

Each message is a rich-text QLabel (selectable, links active) re-rendered from its Markdown source when
text streams in; only the last bubble changes while a reply streams. Opening a conversation renders its
last `FIRST_PAINT` messages, paints, then fills a `PAGE` right after; older pages are added when the user
scrolls to the top (or clicks "Show earlier"), so opening a 500-message chat costs what opening a short
one does. The text column stops widening at a readable measure. The view keeps following the newest text
unless the user has scrolled up to read.

Past ~400 lines on purpose: the bubble, its branch and stats line, the paged view and the composer share
one render path (Markdown to rich text, the palette, the width measure); each class is short on its own.
"""

from __future__ import annotations

import html
import re
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeyEvent
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

from desktop.ui import markdown, theme

ROLE_NAMES = {"user": "You", "assistant": "Hearth"}
STATUS_NOTES = {"interrupted": "Stopped", "error": "Failed", "streaming": "Interrupted"}
PAGE = 20  # messages rendered at a time when the reader scrolls up: two screens or more, cheap to build
FIRST_PAINT = 6  # rendered before the first paint of a conversation (a screenful); the page follows at once


def palette_colors() -> markdown.Palette:
    """The rich-text colours of the theme in use (desktop.ui.theme), light or dark."""
    colors = theme.current()
    return markdown.Palette(
        code_background=colors.code, code_border=colors.border, link=colors.accent, dark=colors.dark
    )


def mark_text(rendered_html: str, query: str, color: str) -> str:
    """Highlight `query` (case-insensitive) in the text of rendered HTML, never inside its tags."""
    words = query.strip()
    if not words:
        return rendered_html
    pattern = re.compile(re.escape(html.escape(words, quote=False)), re.IGNORECASE)
    parts = re.split(r"(<[^>]*>)", rendered_html)
    for i, part in enumerate(parts):
        if part and not part.startswith("<"):
            parts[i] = pattern.sub(lambda m: f'<span style="background-color: {color}">{m.group(0)}</span>', part)
    return "".join(parts)


def stats_line(stats: dict[str, Any], n_ctx: int | None) -> tuple[str, str]:
    """The reply's speed and context use: a short line and a tooltip with the detail."""
    used = stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
    line = f"{stats.get('completion_tokens', 0)} tokens · {stats.get('decode_tokens_per_s', 0.0):.1f} tok/s"
    tip = (
        f"First token after {stats.get('time_to_first_token_s', 0.0):.2f} s; prompt {stats.get('prompt_tokens', 0)}"
        f" tokens ({stats.get('reused_tokens', 0)} reused from the previous turn)"
    )
    if n_ctx:
        line += f" · context {100 * used / n_ctx:.0f}%"
        tip += f"; {used} of {n_ctx} context tokens in use"
    if stats.get("dropped_messages"):
        tip += f"; {stats['dropped_messages']} old messages left out to fit"
    return line, tip


def _flat_button(text: str, name: str, tip: str = "") -> QPushButton:
    button = QPushButton(text)
    button.setFlat(True)
    button.setAccessibleName(name)
    button.setToolTip(tip or name)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


class MessageWidget(QFrame):
    """One message: who, the rendered text, its branch switcher and its actions (copy; edit on a question;
    regenerate on the last answer)."""

    regenerate_will_start = Signal()
    edit_will_start = Signal(int, str)  # message id, its text
    branch_will_switch = Signal(int)  # the sibling message to show

    def __init__(self, role: str, text: str = "", status: str = "complete", message_id: int | None = None) -> None:
        super().__init__()
        self.role = role
        self.text = text
        self.message_id = message_id
        self.query = ""
        self._siblings: list[int] = []
        self._code_blocks: list[str] = []
        self.setObjectName("assistantMessage" if role == "assistant" else "userMessage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        space = theme.SPACE
        layout = QVBoxLayout(self)
        layout.setContentsMargins(space["l"], space["m"], space["l"], space["s"])
        layout.setSpacing(space["xs"])
        who = QLabel(ROLE_NAMES.get(role, role.title()))
        who.setObjectName("roleLabel")
        theme.set_type(who, "caption", bold=True)
        layout.addWidget(who)
        self.body = QLabel()
        self.body.setObjectName("messageBody")
        self.body.setAccessibleName(f"{ROLE_NAMES.get(role, role)} said")
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
        self._sources: list[dict[str, Any]] = []
        self.source_dialog: Any = None  # the open desktop.ui.source_dialog.SourceDialog, if any
        self.sources.hide()
        layout.addWidget(self.sources)
        # The action row is built lazily: a bubble gets version arrows, Edit or Regenerate only when it
        # needs them, which halves what a page of bubbles costs to open.
        self._actions = QHBoxLayout()
        self._actions.setContentsMargins(0, 0, 0, 0)
        self._actions.setSpacing(space["xs"])
        self._branch: tuple[QPushButton, QLabel, QPushButton] | None = None
        self._edit: QPushButton | None = None
        self._regenerate: QPushButton | None = None
        self.note = QLabel()
        self.note.setObjectName("messageNote")
        self._actions.addWidget(self.note)
        self.stats = QLabel()
        self.stats.setObjectName("messageStats")
        theme.set_type(self.stats, "caption")
        self.stats.hide()
        self._actions.addWidget(self.stats)
        self._actions.addStretch(1)
        self.copy_button = _flat_button("Copy", "Copy message")
        self.copy_button.clicked.connect(self.copy)
        self._actions.addWidget(self.copy_button)
        layout.addLayout(self._actions)
        if role == "user" and message_id is not None:
            self.edit_button.show()
        self.set_status(status)
        self._render()

    # -- lazily built controls ------------------------------------------------------------------------

    @property
    def edit_button(self) -> QPushButton:
        if self._edit is None:
            self._edit = _flat_button("Edit", "Edit and resend", "Edit this message and send it again")
            self._edit.clicked.connect(lambda: self.edit_will_start.emit(self.message_id or 0, self.text))
            self._edit.hide()
            self._actions.addWidget(self._edit)
        return self._edit

    @property
    def regenerate_button(self) -> QPushButton:
        if self._regenerate is None:
            self._regenerate = _flat_button("Regenerate", "Regenerate answer", "Answer again; this one is kept")
            self._regenerate.clicked.connect(self.regenerate_will_start.emit)
            self._regenerate.hide()
            self._actions.addWidget(self._regenerate)
        return self._regenerate

    def _branch_controls(self) -> tuple[QPushButton, QLabel, QPushButton]:
        if self._branch is None:
            previous = _flat_button("\u2039", "Previous version")
            previous.clicked.connect(lambda: self._switch(-1))
            label = QLabel()
            label.setObjectName("branchLabel")
            following = _flat_button("\u203a", "Next version")
            following.clicked.connect(lambda: self._switch(1))
            for index, widget in enumerate((previous, label, following)):
                self._actions.insertWidget(index, widget)
            self._branch = (previous, label, following)
        return self._branch

    @property
    def previous_button(self) -> QPushButton:
        return self._branch_controls()[0]

    @property
    def branch_label(self) -> QLabel:
        return self._branch_controls()[1]

    @property
    def next_button(self) -> QPushButton:
        return self._branch_controls()[2]

    def show_regenerate(self, shown: bool) -> None:
        if shown or self._regenerate is not None:
            self.regenerate_button.setVisible(shown)

    def append(self, delta: str) -> None:
        self.text += delta
        self._render()

    def _render(self) -> None:
        rendered = markdown.render(self.text or "…", palette_colors())
        self._code_blocks = rendered.code_blocks
        body = mark_text(rendered.html, self.query, theme.current().highlight) if self.query else rendered.html
        self.body.setText(body)

    def set_saved(self, message: dict[str, Any], siblings: list[int]) -> None:
        """The saved row behind this bubble: its id, its alternatives, and the reply's stats if kept."""
        self.message_id = message["id"]
        if self.role == "user":
            self.edit_button.show()
        self._siblings = siblings
        many = len(siblings) > 1
        if many or self._branch is not None:
            for widget in self._branch_controls():
                widget.setVisible(many)
        if many:
            at = siblings.index(self.message_id)
            self.branch_label.setText(f"{at + 1} / {len(siblings)}")
            self.branch_label.setAccessibleName(f"Version {at + 1} of {len(siblings)}")
        self.set_busy(False)
        meta = message.get("meta") or {}
        if meta.get("stats"):
            self.set_stats(meta["stats"], meta.get("n_ctx"))

    def set_busy(self, busy: bool) -> None:
        """While a reply streams the chat's shape is fixed: no edit, regenerate or switching versions."""
        at = self._siblings.index(self.message_id) if self.message_id in self._siblings else -1
        if self._branch is not None:
            self._branch[0].setEnabled(not busy and at > 0)
            self._branch[2].setEnabled(not busy and 0 <= at < len(self._siblings) - 1)
        for button in (self._edit, self._regenerate):
            if button is not None:
                button.setEnabled(not busy)

    def _switch(self, step: int) -> None:
        at = self._siblings.index(self.message_id) + step if self.message_id in self._siblings else -1
        if 0 <= at < len(self._siblings):
            self.branch_will_switch.emit(self._siblings[at])

    def set_stats(self, stats: dict[str, Any], n_ctx: int | None) -> None:
        line, tip = stats_line(stats, n_ctx)
        self.stats.setText(line)
        self.stats.setToolTip(tip)
        self.stats.show()

    def set_highlight(self, query: str) -> None:
        """Mark this bubble as the search hit, and the query inside it."""
        self.query = query
        self.setProperty("highlighted", True)
        self.style().unpolish(self)
        self.style().polish(self)
        self._render()

    def set_status(self, status: str, error: str | None = None) -> None:
        note = STATUS_NOTES.get(status, "")
        if error:
            note = f"{note}: {error}"
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        """Documents the answer drew on; a click shows the cited passage at its page or section."""
        self._sources = list(sources)
        if not sources:
            self.sources.hide()
            return
        links = []
        for i, source in enumerate(sources, 1):
            path = str(source.get("path") or source.get("source") or "")
            name = path.replace("\\", "/").rsplit("/", 1)[-1] or "source"
            where = f" ({source['location']})" if source.get("location") else ""
            links.append(f'[{i}] <a href="source:{i - 1}">{_escape(name)}</a>{_escape(where)}')
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

    def _open_source(self, href: str) -> None:
        from desktop.ui.source_dialog import SourceDialog

        index = int(href.split(":", 1)[1]) if href.startswith("source:") else -1
        if 0 <= index < len(self._sources):
            self.source_dialog = SourceDialog(self, self._sources[index])
            self.source_dialog.open()  # window-modal, not blocking: the chat keeps streaming behind it


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ChatView(QScrollArea):
    """The messages of the open conversation, newest `PAGE` first rendered, older pages on demand."""

    regenerate_will_start = Signal()
    edit_will_start = Signal(int, str)
    branch_will_switch = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        space = theme.SPACE
        outer = QWidget()
        row = QHBoxLayout(outer)
        row.setContentsMargins(space["l"], space["l"], space["l"], space["l"])
        self.column = QWidget()
        self.column.setObjectName("chatColumn")
        self.column.setMaximumWidth(self.fontMetrics().averageCharWidth() * theme.MEASURE_CHARS + 2 * space["l"])
        row.addWidget(self.column, 1)
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(space["m"])
        self.earlier_button = QPushButton("Show earlier messages")
        self.earlier_button.setFlat(True)
        self.earlier_button.clicked.connect(lambda: self.show_earlier())
        self.earlier_button.hide()
        self._layout.addWidget(self.earlier_button, 0, Qt.AlignmentFlag.AlignHCenter)
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
        self.setWidget(outer)
        self.messages: list[MessageWidget] = []
        self._saved: list[dict[str, Any]] = []  # every message of the branch shown (rendered or not)
        self._branches: dict[int, list[int]] = {}
        self._start = 0  # index in _saved of the first rendered message
        self._follow = True
        self._anchor: int | None = None  # distance from the bottom to keep while older pages are added
        self._focus: MessageWidget | None = None
        self._opened = 0  # counts show_messages calls, so a late page fill cannot land in another chat
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def clear(self) -> None:
        for widget in self.messages:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.messages = []
        self._saved, self._branches, self._start, self._focus = [], {}, 0, None
        self.earlier_button.hide()
        self.empty.show()
        self._follow = True

    def show_messages(
        self, messages: list[dict[str, Any]], branches: dict[int, list[int]] | None = None, focus: int | None = None
    ) -> None:
        """Show a conversation's branch; `focus` (a message id) is rendered, scrolled to and kept in view."""
        self.clear()
        self._saved = [m for m in messages if m["role"] in ROLE_NAMES]
        self._branches = branches or {}
        self._start = max(0, len(self._saved) - FIRST_PAINT)
        at = next((i for i, m in enumerate(self._saved) if m["id"] == focus), None)
        if at is not None:
            self._start = min(self._start, max(0, at - 2))
        self.setUpdatesEnabled(False)  # one layout pass for the whole page
        for message in self._saved[self._start :]:
            self.add(message["role"], message["content"], message.get("status", "complete"), message)
        self.setUpdatesEnabled(True)
        self.earlier_button.setVisible(self._start > 0)
        self._update_regenerate()
        if at is not None:
            self._focus = self.messages[at - self._start]
            self._follow = False
            QTimer.singleShot(0, self._scroll_to_focus)
        self._opened += 1
        if self._start > 0:  # the rest of the first page, once this screenful has painted
            opened = self._opened
            QTimer.singleShot(0, lambda: self._fill_page(opened))

    def _fill_page(self, opened: int) -> None:
        if opened == self._opened and len(self.messages) < PAGE:
            self.show_earlier(PAGE - len(self.messages))

    def show_earlier(self, count: int = PAGE) -> None:
        """Render `count` messages before the first one shown, keeping the view where the reader is."""
        if self._start == 0:
            return
        bar = self.verticalScrollBar()
        self._anchor = bar.maximum() - bar.value()
        end, self._start = self._start, max(0, self._start - count)
        self.setUpdatesEnabled(False)
        for offset, message in enumerate(self._saved[self._start : end]):
            widget = self._make(message["role"], message["content"], message.get("status", "complete"), message)
            self._layout.insertWidget(1 + offset, widget)
            self.messages.insert(offset, widget)
        self.setUpdatesEnabled(True)
        self.earlier_button.setVisible(self._start > 0)

    def add(
        self, role: str, text: str = "", status: str = "complete", saved: dict[str, Any] | None = None
    ) -> MessageWidget:
        widget = self._make(role, text, status, saved)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.messages.append(widget)
        self.empty.hide()
        return widget

    def _make(self, role: str, text: str, status: str, saved: dict[str, Any] | None) -> MessageWidget:
        widget = MessageWidget(role, text, status)
        if saved is not None:
            widget.set_saved(saved, self._branches.get(saved["id"], []))
        widget.regenerate_will_start.connect(self.regenerate_will_start.emit)
        widget.edit_will_start.connect(self.edit_will_start.emit)
        widget.branch_will_switch.connect(self.branch_will_switch.emit)
        return widget

    def refresh_saved(self, messages: list[dict[str, Any]], branches: dict[int, list[int]]) -> None:
        """Give the bubbles of a reply just streamed their saved ids and branches (matched from the end)."""
        saved = [m for m in messages if m["role"] in ROLE_NAMES]
        self._branches = branches
        self._saved = saved
        self._start = max(0, len(saved) - len(self.messages))
        for widget, message in zip(reversed(self.messages), reversed(saved), strict=False):
            widget.set_saved(message, branches.get(message["id"], []))

    def last_answer(self) -> MessageWidget | None:
        return self.messages[-1] if self.messages and self.messages[-1].role == "assistant" else None

    def set_busy(self, busy: bool) -> None:
        for widget in self.messages:
            widget.set_busy(busy)
        self._update_regenerate()

    def _update_regenerate(self) -> None:
        for i, widget in enumerate(self.messages):
            widget.show_regenerate(widget.role == "assistant" and i == len(self.messages) - 1)

    def _scroll_to_focus(self) -> None:
        if self._focus is not None:
            self.ensureWidgetVisible(self._focus, 0, theme.SPACE["xl"])

    def _on_range_changed(self, _low: int, high: int) -> None:
        bar = self.verticalScrollBar()
        if self._anchor is not None:
            bar.setValue(high - self._anchor)
            self._anchor = None
        elif self._focus is not None:
            self._scroll_to_focus()
        elif self._follow:
            bar.setValue(high)

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24
        if value == 0 and self._start > 0 and bar.maximum() > 0 and self._anchor is None:
            self.show_earlier()


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
