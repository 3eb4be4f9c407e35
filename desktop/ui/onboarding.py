"""First run, in three short steps: protect the data (OS keychain, or a passphrase), pick a model (the
bundled one, one found on this computer, or a download: the model picker), and optionally add a folder.

The first step says what Hearth keeps and what personalization does, and that nothing leaves the machine.
The window does the work (opening the store asks for a passphrase where there is no keychain; adding the
folder indexes it in the background); this page only asks. The non-secret settings file records how far
onboarding got, so a first launch closed halfway resumes it, and a finished one never shows again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import theme
from desktop.ui.dialogs import PRIVACY_PROMISE
from desktop.ui.model_picker import ModelPicker

SETTING = "onboarding"  # "started" once the store exists, "done" after the last step
PERSONALIZATION = (
    "Personalization trains a small adapter on this computer from your own documents and chats, so Hearth "
    "answers more like you; your data and what it learns never leave this machine."
)
CUSTODY = {
    "keyring": "Your data is encrypted, and its key is kept in this computer's keychain.",
    "passphrase": "Your data is encrypted under your passphrase: Hearth asks for it when it starts.",
}


def needed() -> bool:
    """First launch (no store key yet), or a first launch that closed before onboarding finished."""
    from desktop.engine.models import read_setting
    from storage import paths

    return not paths.key_file().exists() or read_setting(SETTING) == "started"


def _record(state: str) -> None:
    from desktop.engine.models import update_settings

    update_settings(lambda data: data.__setitem__(SETTING, state))


class Onboarding(QWidget):
    """The first-run page: welcome → model → folder. `start_button` begins (the window opens the store)."""

    encryption_will_start = Signal()  # the window opens the store: keychain, or the passphrase dialog
    folder_will_add = Signal(str)  # a folder to index (in the background, like the Documents tab's)
    onboarding_did_finish = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("onboarding")
        self.steps = QStackedWidget()
        self.steps.setMaximumWidth(self.fontMetrics().averageCharWidth() * 120)  # a readable measure at any DPI
        space = theme.SPACE["xl"]
        outer = QHBoxLayout(self)  # the steps widen up to their measure, centred; the margins take the rest
        outer.setContentsMargins(space, space, space, space)
        outer.addStretch(1)
        outer.addWidget(self.steps, 100)
        outer.addStretch(1)
        self.picker = ModelPicker()
        self.steps.addWidget(self._welcome_step())
        self.steps.addWidget(self._model_step())
        self.steps.addWidget(self._folder_step())

    # -- steps ----------------------------------------------------------------------------------------

    def _card(self, title: str, *texts: str) -> tuple[QWidget, QVBoxLayout, list[QLabel]]:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setSpacing(theme.SPACE["m"])
        heading = QLabel(title)
        theme.set_type(heading, "heading", bold=True)
        column.addWidget(heading)
        labels = [QLabel(text) for text in texts]
        for label in labels:
            label.setWordWrap(True)
            column.addWidget(label)
        return page, column, labels

    def _welcome_step(self) -> QWidget:
        page, column, (promise, personalization, _) = self._card(
            "Welcome to Hearth",
            PRIVACY_PROMISE,
            PERSONALIZATION,
            "First, Hearth sets up the key that encrypts your data: in this computer's keychain where there is "
            "one, otherwise under a passphrase you choose.",
        )
        promise.setObjectName("privacyPromise")
        personalization.setObjectName("personalizationNote")
        self.start_button = QPushButton("Get started")
        self.start_button.setAccessibleName("Get started: set up encryption")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self._begin)
        column.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(1)
        return page

    def _model_step(self) -> QWidget:
        page, column, _ = self._card("Choose a model")
        self.custody_note = QLabel("")
        self.custody_note.setWordWrap(True)
        column.addWidget(self.custody_note)
        intro = QLabel(
            "Hearth comes with a small model that runs anywhere. Models other apps already downloaded are "
            "listed below, and larger ones can be downloaded (only when you click Download)."
        )
        intro.setWordWrap(True)
        column.addWidget(intro)
        column.addWidget(self.picker, 1)
        self.model_next = QPushButton("Continue")
        self.model_next.setAccessibleName("Continue to adding a folder")
        self.model_next.clicked.connect(lambda: self.steps.setCurrentIndex(2))
        column.addWidget(self.model_next, 0, Qt.AlignmentFlag.AlignRight)
        return page

    def _folder_step(self) -> QWidget:
        page, column, _ = self._card(
            "Add a folder (optional)",
            "Hearth can answer from your documents and show where each answer came from. Add a folder now, "
            "or later in the Documents tab; it is indexed in the background, into the encrypted store.",
        )
        self.folder_note = QLabel("")
        self.folder_note.setWordWrap(True)
        column.addWidget(self.folder_note)
        row = QHBoxLayout()
        self.folder_button = QPushButton("Choose a folder…")
        self.folder_button.clicked.connect(self._choose_folder)
        row.addWidget(self.folder_button)
        row.addStretch(1)
        self.finish_button = QPushButton("Start chatting")
        self.finish_button.setDefault(True)
        self.finish_button.clicked.connect(self.finish)
        row.addWidget(self.finish_button)
        column.addLayout(row)
        column.addStretch(1)
        return page

    # -- flow -----------------------------------------------------------------------------------------

    def _begin(self) -> None:
        self.start_button.setEnabled(False)
        self.encryption_will_start.emit()

    def store_did_open(self, custody: str) -> None:
        """The store exists now: say how its key is kept, and go on to the model."""
        _record("started")
        self.custody_note.setText(CUSTODY.get(custody, ""))
        self.steps.setCurrentIndex(1)
        self.picker.refresh()

    def store_did_fail(self) -> None:
        self.start_button.setEnabled(True)  # the window says why; the user can try again

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to Hearth")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        self.folder_will_add.emit(folder)
        self.folder_note.setText(f"Adding {folder}: indexing goes on in the background.")
        self.folder_button.setText("Add another folder…")

    def finish(self) -> None:
        _record("done")
        self.onboarding_did_finish.emit()
