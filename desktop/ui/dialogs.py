"""Dialogs and the first-run page: unlock / choose a passphrase, persona, settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from storage import paths
from storage.keys import MIN_PASSPHRASE

# The two sentences the first-run screen promises (kept here so tests and docs quote the same text).
PRIVACY_PROMISE = (
    "Hearth runs its language model on this computer, and your conversations, documents and what it learns "
    "from them are stored here, encrypted with a key only you hold. "
    "Nothing you type is sent over the network."
)


class UnlockDialog(QDialog):
    """Enter the passphrase, or choose one on first run (typed twice)."""

    def __init__(self, first_run: bool, error: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.first_run = first_run
        self.setWindowTitle("Choose a passphrase" if first_run else "Unlock Hearth")
        self.setModal(True)
        layout = QVBoxLayout(self)
        if first_run:
            intro = (
                "No OS keychain is available, so Hearth encrypts your data under a passphrase. "
                f"Choose one of at least {MIN_PASSPHRASE} characters: "
                "it cannot be recovered if you forget it."
            )
        else:
            intro = "Your conversations are encrypted. Enter your passphrase to unlock them."
        label = QLabel(intro)
        label.setWordWrap(True)
        layout.addWidget(label)
        form = QFormLayout()
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Passphrase:", self.passphrase)
        self.repeat = QLineEdit()
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        if first_run:
            form.addRow("Repeat it:", self.repeat)
        layout.addLayout(form)
        self.error = QLabel(error)
        self.error.setObjectName("errorLabel")
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        self.error.setVisible(bool(error))
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create" if first_run else "Unlock")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _check(self) -> None:
        text = self.passphrase.text()
        problem = ""
        if self.first_run and len(text) < MIN_PASSPHRASE:
            problem = f"Use at least {MIN_PASSPHRASE} characters."
        elif self.first_run and text != self.repeat.text():
            problem = "The two passphrases differ."
        elif not text:
            problem = "Enter your passphrase."
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        self.accept()

    def value(self) -> str:
        return self.passphrase.text()


class PersonaDialog(QDialog):
    """The system prompt of this conversation (empty: use the default from Settings) and its temperature
    (the lowest value, shown as "Default", keeps the app's default)."""

    def __init__(
        self, current: str, default: str, parent: QWidget | None = None, temperature: float | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Persona for this conversation")
        layout = QVBoxLayout(self)
        hint = QLabel("The system prompt the model sees before this conversation. Leave empty for the default.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.editor = QPlainTextEdit(current)
        self.editor.setPlaceholderText(default)
        self.editor.setAccessibleName("System prompt")
        layout.addWidget(self.editor)
        row = QFormLayout()
        self.temperature = QDoubleSpinBox()
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setRange(-0.1, 2.0)  # -0.1 is the "Default" step below 0 (greedy)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(1)
        self.temperature.setSpecialValueText("Default")
        self.temperature.setValue(-0.1 if temperature is None else temperature)
        self.temperature.setToolTip("0 always picks the likeliest word; higher values vary more")
        row.addRow("Temperature:", self.temperature)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 260)

    def value(self) -> str:
        return self.editor.toPlainText()

    def temperature_value(self) -> float | None:
        value = self.temperature.value()
        return None if value < 0 else round(value, 1)


class ApiPanel(QWidget):
    """The local API switch, its address and its bearer token (hidden until asked for)."""

    api_will_toggle = Signal(bool)
    token_will_rotate = Signal()

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.enabled = QCheckBox("Serve an OpenAI-compatible API to apps on this computer (127.0.0.1 only)")
        self.enabled.toggled.connect(self.api_will_toggle.emit)
        form.addRow(self.enabled)
        self.url = QLabel()
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Address:", self.url)
        token_row = QHBoxLayout()
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setAccessibleName("API token")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("shown once, when made (kept only as a hash): New token makes another")
        show = QPushButton("Show")
        show.setCheckable(True)
        show.toggled.connect(
            lambda on: self.token.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        )
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.token.text()))
        rotate = QPushButton("New token")
        rotate.clicked.connect(self.token_will_rotate.emit)
        for widget in (self.token, show, copy, rotate):
            token_row.addWidget(widget)
        form.addRow("Token:", token_row)
        self.show_state(state)

    def show_state(self, state: dict[str, Any]) -> None:
        self.enabled.blockSignals(True)
        self.enabled.setChecked(bool(state.get("running")))
        self.enabled.blockSignals(False)
        self.url.setText(state.get("url", "off") if state.get("running") else "off")
        if state.get("token"):
            self.token.setText(state["token"])


class SettingsDialog(QDialog):
    """Models, threads, default persona, where data lives, passphrase, and (when built) the local API.

    Every change goes through callbacks into `ChatSession`, which runs it on a worker.
    """

    def __init__(
        self,
        *,
        threads: int,
        default_persona: str,
        custody: str,
        on_import: Callable[[Path], None],
        on_threads: Callable[[int], None],
        on_default_persona: Callable[[str], None],
        on_passphrase: Callable[[str], None],
        api_panel: QWidget,
        theme_mode: str = "system",
        on_theme: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._on_import = on_import
        outer = QVBoxLayout(self)
        # The sections scroll and the buttons stay: on a 1024x640 screen the dialog is taller than the window.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        sections = QWidget()
        layout = QVBoxLayout(sections)
        layout.setContentsMargins(0, 0, 0, 0)
        scroll.setWidget(sections)
        outer.addWidget(scroll, 1)

        models = QGroupBox("Models")
        models_layout = QHBoxLayout(models)
        models_layout.addWidget(QLabel("Add a chat model from a GGUF file on this computer."))
        self.import_button = QPushButton("Import GGUF…")
        self.import_button.clicked.connect(self._import)
        models_layout.addWidget(self.import_button)
        layout.addWidget(models)

        general = QGroupBox("Model and persona")
        form = QFormLayout(general)
        self.threads = QSpinBox()
        self.threads.setRange(1, max(1, os.cpu_count() or 1))
        self.threads.setValue(threads)
        form.addRow("CPU threads:", self.threads)
        self.persona = QPlainTextEdit(default_persona)
        self.persona.setFixedHeight(self.persona.fontMetrics().lineSpacing() * 4 + 12)
        form.addRow("Default persona:", self.persona)
        self.theme = QComboBox()
        self.theme.setAccessibleName("Appearance")
        for label, mode in (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark")):
            self.theme.addItem(label, mode)
        self.theme.setCurrentIndex(max(0, self.theme.findData(theme_mode)))
        if on_theme is not None:  # applied at once, so the user sees the choice before keeping it
            self.theme.activated.connect(lambda i: on_theme(self.theme.itemData(i)))
        form.addRow("Appearance:", self.theme)
        layout.addWidget(general)

        data = QGroupBox("Your data")
        data_form = QFormLayout(data)
        location = QLabel(str(paths.home()))
        location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        data_form.addRow("Stored in:", location)
        protection = "OS keychain" if custody == "keyring" else "your passphrase"
        data_form.addRow("Encryption key held by:", QLabel(protection))
        self.new_passphrase = QLineEdit()
        self.new_passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_passphrase.setPlaceholderText(f"at least {MIN_PASSPHRASE} characters")
        self.repeat_passphrase = QLineEdit()
        self.repeat_passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase_button = QPushButton("Change passphrase")
        self.passphrase_error = QLabel()
        self.passphrase_error.setStyleSheet("color: #c0392b")
        self.passphrase_error.hide()
        if custody == "passphrase":
            data_form.addRow("New passphrase:", self.new_passphrase)
            data_form.addRow("Repeat it:", self.repeat_passphrase)
            data_form.addRow("", self.passphrase_button)
            data_form.addRow("", self.passphrase_error)
        self.passphrase_button.clicked.connect(lambda: self._change_passphrase(on_passphrase))
        layout.addWidget(data)

        api = QGroupBox("Local API")
        api_layout = QVBoxLayout(api)
        api_layout.addWidget(api_panel)
        layout.addWidget(api)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self._initial = (threads, default_persona)
        self.accepted.connect(lambda: self._apply(on_threads, on_default_persona))
        wanted = sections.sizeHint().height() + buttons.sizeHint().height() + 3 * outer.spacing() + 24
        room = parent.height() - 40 if parent is not None else wanted
        self.resize(max(560, sections.sizeHint().width() + 32), min(wanted, room))

    def _import(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)")
        if name:
            self._on_import(Path(name))

    def _change_passphrase(self, on_passphrase: Callable[[str], None]) -> None:
        text = self.new_passphrase.text()
        if len(text) < MIN_PASSPHRASE:
            self.passphrase_error.setText(f"Use at least {MIN_PASSPHRASE} characters.")
        elif text != self.repeat_passphrase.text():
            self.passphrase_error.setText("The two passphrases differ.")
        else:
            on_passphrase(text)
            self.new_passphrase.clear()
            self.repeat_passphrase.clear()
            self.passphrase_error.setText("")
        self.passphrase_error.setVisible(bool(self.passphrase_error.text()))

    def _apply(self, on_threads: Callable[[int], None], on_default_persona: Callable[[str], None]) -> None:
        if self.threads.value() != self._initial[0]:
            on_threads(self.threads.value())
        if self.persona.toPlainText() != self._initial[1]:
            on_default_persona(self.persona.toPlainText())
