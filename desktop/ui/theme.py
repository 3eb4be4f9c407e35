"""The window's look in one place: a spacing scale, a type scale, light and dark colours, one stylesheet.

Every widget takes its sizes from `SPACE` and `TYPE` and its colours from the palette this module sets, so
the window reads as one design instead of stock widgets side by side. The mode is "system" (follow the
OS: Qt's colour-scheme hint, re-applied when the OS switches), "light" or "dark"; it is kept in the
machine settings file (paths.settings(), non-secret) so the welcome and unlock screens already wear it,
and HEARTH_THEME overrides it (screenshots, tests).

Styling is palette first (Fusion draws buttons, combos and scroll bars from it, so they keep their native
metrics); the stylesheet only shapes Hearth's own surfaces (sidebar, bubbles, chips, composer), selected
by object name.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from storage import paths

MODES = ("system", "light", "dark")
SETTING = "ui_theme"

# Spacing scale (px): every margin and gap is one of these.
SPACE = {"xs": 4, "s": 8, "m": 12, "l": 16, "xl": 24}
# Type scale: multiples of the platform's default font size, so it follows the user's accessibility size.
TYPE = {"caption": 0.85, "body": 1.0, "title": 1.15, "heading": 1.5}
# Readable measure: chat text stops widening at about this many average characters per line.
MEASURE_CHARS = 90
SIDEBAR_WIDTH, SIDEBAR_MIN_WIDTH = 272, 216


@dataclass(frozen=True)
class Colors:
    name: str
    window: str
    surface: str  # inputs, cards
    sidebar: str
    text: str
    muted: str
    border: str
    accent: str
    accent_text: str
    selection: str  # the open chat in the sidebar
    user_bubble: str
    code: str
    highlight: str  # a search hit
    danger: str

    @property
    def dark(self) -> bool:
        return self.name == "dark"


LIGHT = Colors(
    name="light",
    window="#ffffff",
    surface="#ffffff",
    sidebar="#f5f6f8",
    text="#1f2328",
    muted="#5f6670",
    border="#dde1e6",
    accent="#2f6fde",
    accent_text="#ffffff",
    selection="#e3e9f6",
    user_bubble="#eef2fb",
    code="#f4f5f7",
    highlight="#ffe58a",
    danger="#c62828",
)
DARK = Colors(
    name="dark",
    window="#1d1e21",
    surface="#26282c",
    sidebar="#17181b",
    text="#e7e8ea",
    muted="#9ba1a9",
    border="#383b41",
    accent="#6b9bf0",
    accent_text="#10131a",
    selection="#2c3442",
    user_bubble="#262d3b",
    code="#121316",
    highlight="#7a6300",
    danger="#ef7b7b",
)


def saved_mode() -> str:
    """HEARTH_THEME, else the saved choice, else "system"."""
    mode = os.environ.get("HEARTH_THEME") or _read_settings().get(SETTING) or "system"
    return mode if mode in MODES else "system"


def save_mode(mode: str) -> None:
    """Keep the choice beside the other machine settings (read-modify-replace, like desktop.engine.models)."""
    if mode not in MODES:
        raise ValueError(f"unknown theme {mode!r}")
    data = _read_settings()
    data[SETTING] = mode
    file = paths.settings()
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".settings-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, file)


def _read_settings() -> dict:
    try:
        data = json.loads(paths.settings().read_text("utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: the models module reports a damaged file; a theme just falls back
    return data if isinstance(data, dict) else {}


def os_prefers_dark() -> bool:
    """The OS's light/dark choice as Qt reports it (Unknown, e.g. offscreen or an old desktop: light)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def resolve(mode: str) -> Colors:
    if mode == "system":
        return DARK if os_prefers_dark() else LIGHT
    return DARK if mode == "dark" else LIGHT


def current() -> Colors:
    """The colours in use (the last `apply`), for code that paints rich text."""
    return _current


_current = LIGHT


def scaled_font(base: QFont, step: str, bold: bool = False) -> QFont:
    font = QFont(base)
    font.setPointSizeF(max(6.0, base.pointSizeF() * TYPE[step]))
    font.setBold(bold)
    return font


def set_type(widget: QWidget, step: str, bold: bool = False) -> None:
    widget.setFont(scaled_font(QApplication.font(), step, bold))


def palette(c: Colors) -> QPalette:
    pal = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    for r, value in (
        (role.Window, c.window),
        (role.WindowText, c.text),
        (role.Base, c.surface),
        (role.AlternateBase, c.sidebar),
        (role.Text, c.text),
        (role.Button, c.surface),
        (role.ButtonText, c.text),
        (role.ToolTipBase, c.surface),
        (role.ToolTipText, c.text),
        (role.PlaceholderText, c.muted),
        (role.Highlight, c.accent),
        (role.HighlightedText, c.accent_text),
        (role.Link, c.accent),
        (role.LinkVisited, c.accent),
        (role.Mid, c.border),
        (role.Midlight, c.border),
        (role.Dark, c.border),
        (role.Light, c.surface),
        (role.BrightText, c.danger),
    ):
        pal.setColor(r, QColor(value))
    muted = QColor(c.muted)
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(group.Disabled, r, muted)
    return pal


def stylesheet(c: Colors) -> str:
    s = SPACE
    return f"""
#sidebar {{ background: {c.sidebar}; border-right: 1px solid {c.border}; }}
#conversationList {{ background: transparent; border: none; outline: 0; }}
#conversationList::item {{ padding: {s["xs"] + 2}px {s["s"]}px; border-radius: 6px; color: {c.text}; }}
#conversationList::item:selected {{ background: {c.selection}; color: {c.text}; }}
#conversationList::item:hover:!selected {{ background: {c.selection}; }}
#topBar {{ border-bottom: 1px solid {c.border}; }}
#conversationTitle {{ color: {c.text}; }}
#userMessage {{ background: {c.user_bubble}; border-radius: 12px; }}
#assistantMessage {{ background: transparent; border-radius: 12px; }}
#userMessage[highlighted="true"], #assistantMessage[highlighted="true"] {{ border: 2px solid {c.accent}; }}
#roleLabel, #messageNote, #messageStats, #branchLabel, #dateHeader {{ color: {c.muted}; }}
#composerBox {{ border-top: 1px solid {c.border}; }}
#composer {{ background: {c.surface}; border: 1px solid {c.border}; border-radius: 10px; padding: {s["s"]}px; }}
#composer:focus {{ border: 1px solid {c.accent}; }}
#editBanner, #undoBar {{ background: {c.selection}; border-radius: 6px; }}
#attachmentChip {{ background: {c.selection}; border-radius: 10px; padding: 2px {s["s"]}px; }}
#attachmentChip QToolButton::menu-indicator {{ image: none; width: 0; }}
#sendButton {{ background: {c.accent}; color: {c.accent_text}; border: none; border-radius: 6px;
  padding: {s["xs"] + 2}px {s["l"]}px; }}
#sendButton:disabled {{ background: {c.border}; color: {c.muted}; }}
#stopButton {{ color: {c.danger}; }}
#pickerMessage[role="error"] {{ color: {c.danger}; }}
#helpOverlay {{ background: {c.surface}; border: 1px solid {c.border}; border-radius: 12px; }}
QStatusBar {{ color: {c.muted}; }}
"""


def apply(app: QApplication, mode: str) -> Colors:
    """Set Fusion, the palette and the stylesheet for `mode` on the whole application."""
    global _current
    colors = resolve(mode)
    _current = colors
    app.setStyle("Fusion")
    app.setPalette(palette(colors))
    app.setStyleSheet(stylesheet(colors))
    return colors


class Theme(QObject):
    """The application's theme: applies the saved mode now and again whenever the OS switches."""

    theme_did_change = Signal(str)  # "light" or "dark"

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._app = app
        self.mode = saved_mode()
        self.colors = apply(app, self.mode)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_os_scheme)

    def set_mode(self, mode: str) -> None:
        save_mode(mode)
        self.mode = mode
        self._refresh()

    def _on_os_scheme(self, _scheme: Qt.ColorScheme) -> None:
        if self.mode == "system":
            self._refresh()

    def _refresh(self) -> None:
        self.colors = apply(self._app, self.mode)
        self.theme_did_change.emit(self.colors.name)


def install(app: QApplication) -> Theme:
    """The application's one Theme (a child of the app, created on first use)."""
    existing = app.findChild(Theme)
    return existing if existing is not None else Theme(app)
