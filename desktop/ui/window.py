"""The main window: sidebar, conversation, composer, and the wiring between them and `ChatSession`.

Pages (a QStackedWidget): the first-run welcome, then the tabs (chat, documents, personalize). A tray icon,
where the desktop has a tray, says when Hearth is learning. Shortcuts: Ctrl+N new chat, Ctrl+K search,
Esc stop, Enter send / Shift+Enter newline (in the composer).

Past ~400 lines on purpose: it is only wiring (each widget to its `ChatSession` feature, read top to bottom);
the widgets themselves live in sidebar.py, chat_view.py, docs_view.py, personalize_view.py and dialogs.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QSystemTrayIcon,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.chat_view import ChatView, Composer, MessageWidget, PaletteWatcher
from desktop.ui.dialogs import ApiPanel, PersonaDialog, SettingsDialog, UnlockDialog, WelcomePage
from desktop.ui.docs_view import DocumentsView
from desktop.ui.personalize_view import PersonalizeView
from desktop.ui.session import ChatSession
from desktop.ui.sidebar import Sidebar


class MainWindow(QMainWindow):
    def __init__(self, session: ChatSession, first_run: bool) -> None:
        super().__init__()
        self.session = session
        self.setWindowTitle("Hearth")
        self.resize(1100, 720)
        self.pages = QStackedWidget()
        self.welcome = WelcomePage()
        self.welcome.welcome_did_finish.connect(self._start)
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self._build_chat_page())
        self.setCentralWidget(self.pages)
        self.status = QLabel("Locked")
        self.statusBar().addWidget(self.status, 1)
        privacy = QLabel("Encrypted · on this device")
        privacy.setToolTip("Your data is stored encrypted on this computer; the model runs locally.")
        self.statusBar().addPermanentWidget(privacy)
        self._answer: MessageWidget | None = None
        self.unlock_dialog: UnlockDialog | None = None
        self._unlock_error = ""
        self.tray = self._make_tray()
        self._shortcuts()
        self._connect()
        self._set_busy(False)
        self.pages.setCurrentIndex(0 if first_run else 1)
        self.first_run = first_run

    # -- layout ---------------------------------------------------------------------------------------

    def _build_chat_page(self) -> QWidget:
        splitter = QSplitter()
        self.sidebar = Sidebar()
        splitter.addWidget(self.sidebar)
        chat_page = QWidget()
        column = QVBoxLayout(chat_page)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self._build_top_bar())
        self.chat = ChatView()
        column.addWidget(self.chat, 1)
        column.addWidget(self._build_composer_row())
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(chat_page, "Chat")
        self.documents = DocumentsView()
        self.tabs.addTab(self.documents, "Documents")
        self.personalize = PersonalizeView()
        self.tabs.addTab(self.personalize, "Personalize")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 840])
        return splitter

    def _build_top_bar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("topBar")
        row = QHBoxLayout(bar)
        row.setContentsMargins(12, 6, 12, 6)
        self.title = QLabel("New chat")
        self.title.setObjectName("conversationTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        row.addWidget(self.title, 1)
        self.docs_toggle = QCheckBox("Use my documents")
        self.docs_toggle.setToolTip("Answer from your documents, with sources")
        self.docs_toggle.toggled.connect(lambda on: setattr(self.session.chats, "use_docs", on))
        row.addWidget(self.docs_toggle)
        self.persona_button = QPushButton("Persona…")
        self.persona_button.clicked.connect(self._edit_persona)
        row.addWidget(self.persona_button)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("As Markdown…", lambda: self._export("md"))
        menu.addAction("As JSON…", lambda: self._export("json"))
        self.export_button.setMenu(menu)
        row.addWidget(self.export_button)
        row.addWidget(QLabel("Model:"))
        self.model_picker = QComboBox()
        self.model_picker.setObjectName("modelPicker")
        self.model_picker.setMinimumWidth(160)
        self.model_picker.activated.connect(lambda _: self.session.switch_model(self.model_picker.currentText()))
        row.addWidget(self.model_picker)
        row.addWidget(QLabel("Adapter:"))
        self.adapter_picker = QComboBox()
        self.adapter_picker.setObjectName("adapterPicker")
        self.adapter_picker.setMinimumWidth(150)
        self.adapter_picker.setToolTip("Your personal adapter: what Hearth learned from your data")
        self.adapter_picker.addItem("Off", None)
        self.adapter_picker.activated.connect(
            lambda index: self.session.personalization.activate(self.adapter_picker.itemData(index))
        )
        row.addWidget(self.adapter_picker)
        return bar

    def _build_composer_row(self) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(12, 8, 12, 12)
        self.composer = Composer()
        row.addWidget(self.composer, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.composer.submit)
        row.addWidget(self.send_button)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.session.stop)
        row.addWidget(self.stop_button)
        return box

    def _shortcuts(self) -> None:
        QShortcut(QKeySequence("Ctrl+N"), self, activated=self.session.chats.new_chat)
        QShortcut(QKeySequence("Ctrl+K"), self, activated=self.sidebar.focus_search)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.session.stop)

    def _connect(self) -> None:
        s = self.session
        s.store_did_open.connect(self._on_store_open)
        s.store_did_fail.connect(self._on_store_fail)
        s.chats.conversations_did_load.connect(self.sidebar.show_conversations)
        s.chats.conversation_did_open.connect(self._on_conversation_open)
        s.chats.conversation_did_create.connect(self._on_conversation_create)
        s.chats.search_did_finish.connect(self.sidebar.show_search_results)
        s.models_did_load.connect(self._on_models)
        s.engine_will_load.connect(lambda name: self._say(f"Loading {name or 'the model'}…"))
        s.engine_did_load.connect(lambda name: self._say(f"{name} ready"))
        s.engine_did_fail.connect(self._on_engine_fail)
        s.chats.generation_will_start.connect(self._on_generation_start)
        s.chats.generation_did_stream.connect(self._on_stream)
        s.chats.generation_did_finish.connect(self._on_generation_finish)
        s.action_did_succeed.connect(self._say)
        s.action_did_fail.connect(self._on_action_fail)
        if s.passphrase is not None:
            s.passphrase.passphrase_will_ask.connect(self._ask_passphrase)
        self.sidebar.chat_will_create.connect(s.chats.new_chat)
        self.sidebar.conversation_will_open.connect(s.chats.open)
        self.sidebar.conversation_will_rename.connect(s.chats.rename)
        self.sidebar.conversation_will_delete.connect(s.chats.delete)
        self.sidebar.search_will_run.connect(s.chats.search)
        self.sidebar.settings_will_open.connect(self.open_settings)
        self.composer.message_will_send.connect(self._send)
        self.documents.documents_will_add.connect(self._add_documents)
        self.documents.document_will_forget.connect(s.documents.forget)
        self.documents.ingest_will_stop.connect(s.documents.stop_ingest)
        s.documents.documents_did_load.connect(self.documents.show_documents)
        s.documents.ingest_did_progress.connect(self.documents.show_progress)
        s.documents.ingest_did_finish.connect(self.documents.show_summary)
        s.api.api_did_change.connect(self._on_api)
        p = self.personalize
        p.personalize_will_start.connect(self._start_personalization)
        p.personalize_will_pause.connect(s.personalization.pause)
        p.personalize_will_cancel.connect(s.personalization.cancel)
        p.adapter_will_activate.connect(s.personalization.activate)
        p.adapter_will_rollback.connect(s.personalization.rollback)
        p.adapter_will_delete.connect(self._delete_adapter)
        s.personalization.adapters_did_load.connect(self._on_adapters)
        s.personalization.adapter_did_activate.connect(self._on_adapter_activate)
        s.personalization.adapter_did_fail.connect(
            lambda message: self._say(f"Personal adapter not applied: {message}")
        )
        s.personalization.personalize_did_progress.connect(p.show_status)
        s.personalization.personalize_did_progress.connect(self._on_learning)
        s.personalization.personalize_did_finish.connect(self._on_personalize_finish)
        self._api_state: dict[str, Any] = {"running": False}
        self.chat.regenerate_will_start.connect(s.chats.regenerate)
        self._palette_watcher = PaletteWatcher(self)
        self._palette_watcher.palette_did_change.connect(self._rerender)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self._palette_watcher)

    # -- store ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """After the window shows: unlock the store (first run waits for "Get started")."""
        if not self.first_run:
            self._start()

    def _start(self) -> None:
        self.pages.setCurrentIndex(1)
        self._say("Unlocking…")
        self.session.open_store()

    def _ask_passphrase(self, first_run: bool) -> None:
        dialog = UnlockDialog(first_run, self._unlock_error, self)
        dialog.setObjectName("unlockDialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.unlock_dialog = dialog
        dialog.accepted.connect(lambda: self.session.passphrase.answer(dialog.value()))
        dialog.rejected.connect(lambda: self.session.passphrase.answer(None))
        dialog.open()

    def _on_store_open(self) -> None:
        self._unlock_error = ""
        self._say("Unlocked")
        self._set_busy(False)
        self.composer.setFocus()

    def _on_store_fail(self, message: str) -> None:
        if message == "wrong passphrase":
            self._unlock_error = "Wrong passphrase, try again."
            self.session.open_store()
            return
        self._say(f"Locked: {message}")
        retry = QMessageBox(QMessageBox.Icon.Warning, "Hearth is locked", message, parent=self)
        retry.setObjectName("storeErrorBox")
        retry.addButton("Try again", QMessageBox.ButtonRole.AcceptRole).clicked.connect(self.session.open_store)
        retry.addButton(QMessageBox.StandardButton.Close)
        retry.open()

    # -- conversations --------------------------------------------------------------------------------

    def _on_conversation_open(self, conversation: dict[str, Any]) -> None:
        self._answer = None
        self.chat.show_messages(conversation["messages"])
        self.title.setText(conversation["title"] or "New chat")
        self.sidebar.select(conversation["id"])
        self._set_busy(self.session.chats.generating)
        self.composer.setFocus()

    def _on_conversation_create(self, conversation_id: int) -> None:
        self.sidebar.select(conversation_id)
        self.session.chats.refresh()

    def _send(self, text: str) -> None:
        if self.session.chats.send(text):
            self.composer.clear()

    def _on_generation_start(self, text: str) -> None:
        self.chat.add("user", text)
        self._answer = self.chat.add("assistant", "", "complete")
        if self.session.chats.conversation_id is None:
            self.title.setText(" ".join(text.split())[:60])
        self._set_busy(True)

    def _on_stream(self, delta: str) -> None:
        if self._answer is not None:
            self._answer.append(delta)

    def _on_generation_finish(self, result: dict[str, Any]) -> None:
        answer, self._answer = self._answer, None
        if answer is not None:
            answer.set_status(result["status"], result.get("error"))
            answer.set_sources(result.get("sources") or [])
            if not answer.text:
                answer.append("")
        self._set_busy(False)
        self.sidebar.select(self.session.chats.conversation_id)

    def _set_busy(self, busy: bool) -> None:
        ready = self.session.store_ready
        self.send_button.setVisible(not busy)
        self.send_button.setEnabled(ready)
        self.stop_button.setVisible(busy)
        self.model_picker.setEnabled(not busy)
        self.adapter_picker.setEnabled(not busy)
        self.chat.set_busy(busy)
        has_conversation = self.session.chats.conversation_id is not None
        self.export_button.setEnabled(has_conversation and not busy)

    # -- documents and API ----------------------------------------------------------------------------

    def _add_documents(self, paths: list[str]) -> None:
        if not self.session.store_ready:
            return
        self.documents.set_busy(True)
        self.session.documents.add(paths)

    def _on_api(self, state: dict[str, Any]) -> None:
        self._api_state = state
        self._say(f"Local API on {state['url']}" if state.get("running") else "Local API off")
        panel = getattr(self, "api_panel", None)
        if panel is not None:
            panel.show_state(state)

    # -- personalization ------------------------------------------------------------------------------

    def _start_personalization(self) -> None:
        if not self.session.store_ready:
            return
        self.session.store_custody(self._start_with_custody)

    def _start_with_custody(self, custody: str) -> None:
        """The trainer is another process and opens the store itself: with passphrase custody it needs
        the passphrase, which this window does not keep, so ask for it (it goes through a pipe)."""
        from storage.keys import env_passphrase

        if custody != "passphrase" or env_passphrase():
            self.session.personalization.start(None)
            return
        text, ok = QInputDialog.getText(
            self,
            "Personalize",
            "Hearth learns in a separate background process, which needs your passphrase to open your data:",
            QLineEdit.EchoMode.Password,
        )
        if ok and text:
            self.session.personalization.start(text)

    def _delete_adapter(self, adapter_id: str) -> None:
        answer = QMessageBox.question(
            self, "Delete adapter", f"Delete adapter version {adapter_id}? This cannot be undone."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.session.personalization.delete(adapter_id)

    def _on_adapters(self, records: list[Any]) -> None:
        self.personalize.show_adapters(records)
        live = self.adapter_picker.currentData()
        self.adapter_picker.clear()
        self.adapter_picker.addItem("Off", None)
        for r in reversed(records):
            label = f"{r.id} ({100 * r.improvement:+.0f}%)"
            self.adapter_picker.addItem(label, r.id)
        active = next((r.id for r in records if r.active), live)
        self._on_adapter_activate(active)

    def _on_adapter_activate(self, adapter_id: str | None) -> None:
        index = self.adapter_picker.findData(adapter_id) if adapter_id is not None else 0
        self.adapter_picker.setCurrentIndex(max(index, 0))

    def _on_learning(self, status: dict[str, Any]) -> None:
        learning = self.session.personalization.job_running
        self.tray_text = "Hearth is learning" if learning else "Hearth"
        if learning and status.get("state") == "training" and status.get("max_steps"):
            self.tray_text += f" (step {status.get('step', 0)} of {status['max_steps']})"
        if self.tray is not None:
            self.tray.setToolTip(self.tray_text)

    def _on_personalize_finish(self, status: dict[str, Any]) -> None:
        state = status.get("state", "")
        if state == "failed":
            self._say("Personalization stopped: " + str(status.get("error") or "see the Personalize tab"))
        elif state in ("activated", "kept", "paused", "cancelled"):
            self._say(f"Personalization {state}")
        if self.tray is not None and state in ("activated", "kept"):
            self.tray.showMessage("Hearth", self.personalize.state_label.text())

    def _make_tray(self) -> QSystemTrayIcon | None:
        """Only where the desktop has a tray; the window works the same without one."""
        self.tray_text = "Hearth"
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        icon = self.windowIcon()
        if icon.isNull():
            icon = self.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
        tray = QSystemTrayIcon(icon, self)
        tray.setToolTip(self.tray_text)
        tray.activated.connect(lambda _: (self.showNormal(), self.raise_(), self.activateWindow()))
        tray.show()
        return tray

    # -- top bar --------------------------------------------------------------------------------------

    def _on_models(self, names: list[str], active: str) -> None:
        self.model_picker.clear()
        self.model_picker.addItems(names)
        self.model_picker.setCurrentText(active)

    def _on_engine_fail(self, message: str) -> None:
        self._say(f"Model not loaded: {message}")
        QMessageBox.warning(self, "Model not loaded", message)

    def _edit_persona(self) -> None:
        dialog = PersonaDialog(self.session.chats.system_prompt or "", self.session.chats.default_system_prompt, self)
        dialog.accepted.connect(lambda: self.session.chats.set_persona(dialog.value()))
        dialog.open()

    def _export(self, fmt: str) -> None:
        cid = self.session.chats.conversation_id
        if cid is None:
            return
        title = self.session.chats.conversation_title or "conversation"
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip() or "conversation"
        suffix = ".md" if fmt == "md" else ".json"
        kind = "Markdown (*.md)" if fmt == "md" else "JSON (*.json)"
        name, _ = QFileDialog.getSaveFileName(self, "Export conversation", str(Path.home() / (safe + suffix)), kind)
        if name:
            self.session.chats.export(cid, Path(name), fmt)

    def open_settings(self) -> SettingsDialog | None:
        if not self.session.store_ready:
            return None
        self.session.store_custody(self._show_settings)
        return None

    def _show_settings(self, custody: str) -> None:
        from desktop.engine import physical_cores

        dialog = SettingsDialog(
            threads=self.session.threads or physical_cores(),
            default_persona=self.session.chats.default_system_prompt,
            custody=custody,
            on_import=self.session.import_model,
            on_threads=self.session.set_threads,
            on_default_persona=self.session.chats.set_default_persona,
            on_passphrase=self.session.change_passphrase,
            api_panel=self._build_api_panel(),
            parent=self,
        )
        dialog.setObjectName("settingsDialog")
        self.settings_dialog = dialog
        dialog.open()

    def _build_api_panel(self) -> ApiPanel:
        panel = ApiPanel(self._api_state)
        panel.api_will_toggle.connect(self.session.api.set)
        panel.token_will_rotate.connect(self.session.api.rotate_token)
        self.api_panel = panel
        return panel

    # -- misc -----------------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.status.setText(message)

    def _on_action_fail(self, message: str) -> None:
        self._say(message)
        QMessageBox.warning(self, "Hearth", message)

    def _rerender(self) -> None:
        for widget in self.chat.messages:
            widget.append("")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.session.stop()
        super().closeEvent(event)
