"""The window as a person sees it: theme, sidebar width and groups, whole strings at 1024x640, shortcuts,
accessible names. Real window over a real store; the model is not needed here, so none is loaded."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QWidget

from desktop.ui import shortcuts, theme
from desktop.ui.sidebar import group_conversations


@pytest.fixture
def window(home_with_store: Path, make_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real window, unlocked, at its default size; no model is loaded (this file is about the window)."""
    from tests.gui.conftest import PASSPHRASE

    monkeypatch.setenv("HEARTH_PASSPHRASE", PASSPHRASE)
    services, session, win = make_window()
    session.load_engine = lambda: None
    win.resize(1180, 760)
    with qtbot.waitSignal(session.chats.conversations_did_load, timeout=30_000):
        win.start()
    yield win
    if (
        session.personalization.job_running
    ):  # a test made it "learn": end that, or closing the window would ask about it
        from personalize import job

        job.write_status(state="cancelled", pid=0)
        session.personalization.poll()
    win.theme.set_mode("system")  # the QApplication outlives the test
    session.shutdown()
    services.close()


def clipped(root: QWidget) -> list[str]:
    """Visible buttons, check boxes and one-line labels narrower than their text needs."""
    bad = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisibleTo(root) or widget.width() == 0:
            continue
        if isinstance(widget, QAbstractButton | QCheckBox) and widget.text():
            need = widget.sizeHint().width()
            if widget.width() < need:
                bad.append(f"{type(widget).__name__} {widget.text()!r}: {widget.width()} < {need}")
        elif type(widget) is QLabel and widget.text() and not widget.wordWrap() and "<" not in widget.text():
            need = widget.fontMetrics().horizontalAdvance(widget.text())
            if widget.contentsRect().width() < need:
                bad.append(f"QLabel {widget.text()!r}: {widget.contentsRect().width()} < {need}")
    return bad


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("size", [(1024, 640), (1280, 800)])
def test_every_string_is_whole_at_small_and_default_sizes(
    qtbot: Any, window: Any, mode: str, size: tuple[int, int]
) -> None:
    window.theme.set_mode(mode)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0])
    window.session.chats.conversation_did_open.emit(
        {"id": None, "title": "A long conversation title " * 4, "messages": [], "branches": {}, "focus": None}
    )
    assert clipped(window) == []
    assert window.persona_button.width() >= window.persona_button.sizeHint().width()
    assert window.sidebar.width() >= theme.SIDEBAR_MIN_WIDTH
    assert window.title.text().startswith("A long conversation title")  # elided on screen, whole in the tooltip


def test_sidebar_has_a_sensible_width_and_cannot_collapse(qtbot: Any, window: Any) -> None:
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.sidebar.width() > 0)
    assert abs(window.sidebar.width() - theme.SIDEBAR_WIDTH) <= 8
    window.splitter.setSizes([0, 2000])
    assert window.sidebar.width() >= theme.SIDEBAR_MIN_WIDTH


def test_conversations_are_grouped_by_date_on_one_elided_line(qtbot: Any, window: Any, store_call: Any) -> None:
    def seed(store: Any) -> None:
        now = datetime.now(UTC)
        for days, title in [(0, "Fresh one"), (1, "From yesterday"), (3, "Earlier this week"), (40, "Ancient")]:
            cid = store.chats.create("A very long title that cannot fit in the sidebar at all: " + title)
            stamp = (now - timedelta(days=days)).isoformat().replace("+00:00", "Z")
            store.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", [stamp, cid])

    store_call(window.session, seed)
    with qtbot.waitSignal(window.session.chats.conversations_did_load, timeout=10_000):
        window.session.chats.refresh()
    sidebar = window.sidebar
    assert sidebar.headings() == ["TODAY", "YESTERDAY", "PREVIOUS 7 DAYS", "OLDER"]
    assert not sidebar.list.wordWrap() and sidebar.list.textElideMode() == Qt.TextElideMode.ElideRight
    row = sidebar.list.visualItemRect(sidebar.list.item(1))
    assert row.height() < 2 * sidebar.list.fontMetrics().lineSpacing() + 16  # one line, not a word column


def test_group_order_pinned_folders_then_dates() -> None:
    today = date(2026, 12, 1)
    stamp = lambda d: datetime(d.year, d.month, d.day, 12, tzinfo=UTC).isoformat()  # noqa: E731
    chats = [
        {"id": 1, "updated": stamp(today), "pinned": False, "folder": ""},
        {"id": 2, "updated": stamp(today - timedelta(days=20)), "pinned": True, "folder": "Work"},
        {"id": 3, "updated": stamp(today - timedelta(days=2)), "pinned": False, "folder": "work trips"},
        {"id": 4, "updated": stamp(today - timedelta(days=7)), "pinned": False, "folder": ""},
        {"id": 5, "updated": stamp(today - timedelta(days=9)), "pinned": False, "folder": "Alpha"},
    ]
    groups = [(name, [c["id"] for c in items]) for name, items in group_conversations(chats, today)]
    assert groups == [("Pinned", [2]), ("Alpha", [5]), ("work trips", [3]), ("Today", [1]), ("Previous 7 days", [4])]


def test_theme_can_be_forced_and_follows_the_os(
    qtbot: Any, window: Any, hearth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    def window_color() -> str:
        return QApplication.palette().color(QPalette.ColorRole.Window).name()

    with qtbot.waitSignal(window.theme.theme_did_change) as changed:
        window.theme.set_mode("dark")
    assert changed.args == ["dark"] and window_color() == theme.DARK.window
    assert json.loads((hearth_home / "settings.json").read_text())["ui_theme"] == "dark"
    assert theme.saved_mode() == "dark"
    window.theme.set_mode("system")
    assert window_color() == theme.LIGHT.window  # offscreen reports no OS preference: light
    monkeypatch.setattr(theme, "os_prefers_dark", lambda: True)  # the OS switches to dark
    with qtbot.waitSignal(window.theme.theme_did_change):
        QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert window_color() == theme.DARK.window
    monkeypatch.setenv("HEARTH_THEME", "light")
    assert theme.saved_mode() == "light"


def test_shortcuts_and_their_help_overlay(qtbot: Any, window: Any) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F1)
    overlay = window.help_overlay
    assert overlay.isVisible()
    listed = {label.text() for label in overlay.findChildren(QLabel)}
    assert {text for _, _, text in shortcuts.SHORTCUTS} <= listed
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not overlay.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.personalize
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.search_box.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.composer.hasFocus()


def test_every_control_has_an_accessible_name_and_tab_reaches_the_composer(qtbot: Any, window: Any) -> None:
    controls = (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit)
    chat_page = window.tabs.widget(0)
    unnamed = [
        f"{type(w).__name__} {w.objectName()}"
        for root in (window.sidebar, chat_page)
        for w in root.findChildren(QWidget)
        if isinstance(w, controls) and w.isVisibleTo(root) and not (w.accessibleName() or getattr(w, "text", str)())
    ]
    assert unnamed == []
    window.sidebar.search_box.setFocus()
    order = []
    for _ in range(12):
        qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
        order.append(window.focusWidget())
        if window.focusWidget() is window.composer:
            break
    assert window.composer in order, [type(w).__name__ for w in order]
