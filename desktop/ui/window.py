"""The main window: sidebar, conversation, composer, and the wiring between them and `ChatSession`.

Pages (a QStackedWidget): the first-run onboarding, then the tabs (chat, documents, personalize, models).
A tray icon, where the desktop has a tray, says when Hearth is learning. Shortcuts are declared in desktop.ui.shortcuts
(F1 lists them). Sizes and colours come from desktop.ui.theme; at 1024x640 every control keeps its text
(the top bar holds the title, which elides, and four controls; the documents switch sits under the
composer).

Past ~400 lines on purpose: it is only wiring (each widget to its `ChatSession` feature, read top to bottom);
the widgets themselves live in sidebar.py, chat_view.py, docs_view.py, personalize_view.py and dialogs.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QCloseEvent
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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import shortcuts, theme
from desktop.ui.attachments import AttachmentBar, FileDrop, attach_button
from desktop.ui.chat_view import ChatView, Composer, MessageWidget
from desktop.ui.clients_view import ClientsPanel
from desktop.ui.dialogs import ApiPanel, PersonaDialog, SettingsDialog, UnlockDialog
from desktop.ui.docs_view import DocumentsView
from desktop.ui.elided_label import ElidedLabel
from desktop.ui.model_picker import ModelPicker
from desktop.ui.onboarding import Onboarding
from desktop.ui.personalize_view import PersonalizeView
from desktop.ui.session import ChatSession
from desktop.ui.sidebar import Sidebar
from desktop.ui.tray import Tray
from desktop.ui.undo_bar import UndoBar

NO_ADAPTER = "No adapter"


class MainWindow(QMainWindow):
    def __init__(self, session: ChatSession, first_run: bool) -> None:
        super().__init__()
        self.session = session
        self.theme = theme.install(QApplication.instance())  # type: ignore[arg-type]
        self.setWindowTitle("Hearth")
        self.resize(1180, 760)
        self.setMinimumSize(960, 600)
        self.pages = QStackedWidget()
        self.welcome = Onboarding()
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self._build_chat_page())
        self.setCentralWidget(self.pages)
        self.status = QLabel("Locked")
        self.statusBar().addWidget(self.status, 1)
        self.undo_bar = UndoBar()
        self.statusBar().addWidget(self.undo_bar)
        privacy = QLabel("Encrypted · on this device")
        privacy.setToolTip("Your data is stored encrypted on this computer; the model runs locally.")
        self.statusBar().addPermanentWidget(privacy)
        self._answer: MessageWidget | None = None
        self.editing: int | None = None  # the user message being edited in the composer
        self.help_overlay = shortcuts.HelpOverlay(self)
        self.unlock_dialog: UnlockDialog | None = None
        self._unlock_error = ""
        self.tray = Tray(self)
        self._shortcuts()
        self._connect()
        self._set_busy(False)
        self.pages.setCurrentIndex(0 if first_run else 1)
        self.first_run = first_run

    # -- layout ---------------------------------------------------------------------------------------

    def _build_chat_page(self) -> QWidget:
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
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
        self.file_drops = [FileDrop(chat_page), FileDrop(self.composer.viewport())]  # files dropped on the chat
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(chat_page, "Chat")
        self.documents = DocumentsView()
        self.tabs.addTab(self.documents, "Documents")
        self.personalize = PersonalizeView()
        self.tabs.addTab(self.personalize, "Personalize")
        self.models_view = ModelPicker()
        self.tabs.addTab(self.models_view, "Models")
        self.tabs.currentChanged.connect(
            lambda i: self.models_view.refresh() if self.tabs.widget(i) is self.models_view else None
        )
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([theme.SIDEBAR_WIDTH, 10_000])
        self.splitter = splitter
        return splitter

    def _build_top_bar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("topBar")
        bar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        space = theme.SPACE
        row = QHBoxLayout(bar)
        row.setContentsMargins(space["l"], space["s"], space["m"], space["s"])
        row.setSpacing(space["s"])
        self.title = ElidedLabel("New chat")
        self.title.setObjectName("conversationTitle")
        theme.set_type(self.title, "title", bold=True)
        row.addWidget(self.title, 1)
        self.persona_button = QPushButton("Persona…")
        self.persona_button.setToolTip("This chat's system prompt: who Hearth is in this conversation")
        self.persona_button.setAccessibleName("Persona for this chat")
        self.persona_button.clicked.connect(self._edit_persona)
        row.addWidget(self.persona_button)
        self.export_button = QPushButton("Export")  # a push button draws its menu arrow beside the text
        self.export_button.setAccessibleName("Export this chat")
        menu = QMenu(self.export_button)
        menu.addAction("As Markdown…", lambda: self._export("md"))
        menu.addAction("As JSON (every branch)…", lambda: self._export("json"))
        self.export_button.setMenu(menu)
        row.addWidget(self.export_button)
        self.model_picker = QComboBox()
        self.model_picker.setObjectName("modelPicker")
        self.model_picker.setAccessibleName("Model")
        self.model_picker.setToolTip("The model answering")
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_picker.setMinimumContentsLength(16)
        self.model_picker.activated.connect(lambda _: self.session.switch_model(self.model_picker.currentText()))
        row.addWidget(self.model_picker)
        self.adapter_picker = QComboBox()
        self.adapter_picker.setObjectName("adapterPicker")
        self.adapter_picker.setAccessibleName("Personal adapter")
        self.adapter_picker.setToolTip("Your personal adapter: what Hearth learned from your data")
        self.adapter_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.adapter_picker.setMinimumContentsLength(14)
        self.adapter_picker.addItem(NO_ADAPTER, None)
        self.adapter_picker.activated.connect(
            lambda index: self.session.personalization.activate(self.adapter_picker.itemData(index))
        )
        row.addWidget(self.adapter_picker)
        return bar

    def _build_composer_row(self) -> QWidget:
        box = QWidget()
        box.setObjectName("composerBox")
        box.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        space = theme.SPACE
        column = QVBoxLayout(box)
        column.setContentsMargins(space["l"], space["s"], space["l"], space["m"])
        column.setSpacing(space["xs"])
        self.edit_banner = QWidget()
        self.edit_banner.setObjectName("editBanner")
        self.edit_banner.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        banner = QHBoxLayout(self.edit_banner)
        banner.setContentsMargins(space["s"], space["xs"], space["xs"], space["xs"])
        banner.addWidget(QLabel("Editing your message: sending keeps the old version as a branch"), 1)
        cancel = QPushButton("Cancel")
        cancel.setFlat(True)
        cancel.setAccessibleName("Cancel editing")
        cancel.clicked.connect(self.cancel_edit)
        banner.addWidget(cancel)
        self.edit_banner.hide()
        column.addWidget(self.edit_banner)
        self.attachment_bar = AttachmentBar()
        column.addWidget(self.attachment_bar)
        row = QHBoxLayout()
        row.setSpacing(space["s"])
        self.composer = Composer()
        self.composer.setAccessibleName("Message")
        row.addWidget(self.composer, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setAccessibleName("Send message")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.composer.submit)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setAccessibleName("Stop the answer")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.session.stop)
        row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        column.addLayout(row)
        options = QHBoxLayout()
        self.attach_button = attach_button()
        self.attach_button.clicked.connect(self._choose_attachments)
        options.addWidget(self.attach_button)
        self.docs_toggle = QCheckBox("Use my documents")
        self.docs_toggle.setToolTip("Answer from your documents, with sources")
        self.docs_toggle.toggled.connect(lambda on: setattr(self.session.chats, "use_docs", on))
        options.addWidget(self.docs_toggle)
        options.addStretch(1)
        hint = QLabel("F1: shortcuts")
        hint.setObjectName("messageNote")
        theme.set_type(hint, "caption")
        options.addWidget(hint)
        column.addLayout(options)
        return box

    def _shortcuts(self) -> None:
        self._bound = shortcuts.bind(
            self,
            {
                "new_chat": self.session.chats.new_chat,
                "search": self.sidebar.focus_search,
                "focus_input": self.composer.setFocus,
                "stop": self._escape,
                "undo_delete": self.undo_bar.undo,
                "chat_tab": lambda: self.tabs.setCurrentIndex(0),
                "documents_tab": lambda: self.tabs.setCurrentIndex(1),
                "personalize_tab": lambda: self.tabs.setCurrentIndex(2),
                "help": self.help_overlay.toggle,
            },
        )

    def _escape(self) -> None:
        """Esc closes what is on top: the shortcut card, then an edit, then the streaming answer."""
        if self.help_overlay.isVisible():
            self.help_overlay.hide()
        elif self.editing is not None and not self.session.chats.generating:
            self.cancel_edit()
        else:
            self.session.stop()

    def _connect(self) -> None:
        s = self.session
        s.store_did_open.connect(self._on_store_open)
        s.store_did_fail.connect(self._on_store_fail)
        s.chats.conversations_did_load.connect(self.sidebar.show_conversations)
        s.chats.conversation_did_open.connect(self._on_conversation_open)
        s.chats.conversation_did_create.connect(self._on_conversation_create)
        s.chats.conversation_did_refresh.connect(lambda c: self.chat.refresh_saved(c["messages"], c["branches"]))
        s.chats.conversation_did_trash.connect(self.undo_bar.offer)
        self.undo_bar.undo_will_run.connect(s.chats.restore)
        self.undo_bar.undo_did_expire.connect(lambda _: s.chats.purge_trash())
        s.chats.search_did_finish.connect(self.sidebar.show_search_results)
        s.models_did_load.connect(self._on_models)
        s.engine_will_load.connect(lambda name: self._say(f"Loading {name or 'the model'}…"))
        s.engine_did_load.connect(lambda name: self._say(f"{name} ready"))
        s.engine_did_fail.connect(self._on_engine_fail)
        self._connect_models_and_onboarding()
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
        self.sidebar.conversation_will_delete.connect(s.chats.trash)
        self.sidebar.conversation_will_pin.connect(s.chats.pin)
        self.sidebar.conversation_will_file.connect(s.chats.set_folder)
        self.sidebar.search_hit_will_open.connect(s.chats.open)
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
        s.personalization.personalize_did_progress.connect(self.tray.show_job)
        s.documents.ingest_did_progress.connect(lambda _: self.tray.set_indexing(True))
        s.documents.ingest_did_finish.connect(lambda _: self.tray.set_indexing(False))
        s.personalization.personalize_did_finish.connect(self._on_personalize_finish)
        self._api_state: dict[str, Any] = {"running": False}
        a = s.chats.attachments
        a.attachments_did_change.connect(self.attachment_bar.show_attachments)
        a.attach_will_start.connect(lambda name: self._say(f"Reading {name}…"))
        self.attachment_bar.attachment_will_remove.connect(a.remove)
        self.attachment_bar.attachment_will_add_to_library.connect(a.add_to_library)
        for drop in self.file_drops:
            drop.files_did_drop.connect(self.attach_files)
        self.chat.regenerate_will_start.connect(s.chats.regenerate)
        self.chat.edit_will_start.connect(self.start_edit)
        self.chat.branch_will_switch.connect(s.chats.switch_branch)
        # A bound method, not a lambda: the controller is app-wide, and Qt drops a method's connection when
        # this window is destroyed, so a closed window's deleted messages are never re-rendered.
        self.theme.theme_did_change.connect(self._on_theme_change)

    def _connect_models_and_onboarding(self) -> None:
        """Both model pickers (the Models tab, the first run's) ask the session to load; it tells them what
        is loaded, or why a model was refused."""
        s = self.session
        for picker in (self.models_view, self.welcome.picker):
            picker.model_will_use.connect(s.switch_model)
            s.models_did_load.connect(lambda _names, active, p=picker: p.set_active(active))
            s.engine_did_fail.connect(picker.show_error)
        self.welcome.encryption_will_start.connect(self._unlock)
        self.welcome.folder_will_add.connect(lambda folder: self._add_documents([folder]))
        self.welcome.onboarding_did_finish.connect(self._finish_onboarding)
        s.store_did_fail.connect(lambda _: self.welcome.store_did_fail())

    # -- store ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """After the window shows: unlock the store (first run waits for the onboarding's "Get started")."""
        if not self.first_run:
            self.pages.setCurrentIndex(1)
            self._unlock()

    def _unlock(self) -> None:
        self._say("Unlocking…")
        self.session.open_store()

    def _finish_onboarding(self) -> None:
        self.pages.setCurrentIndex(1)
        self.composer.setFocus()

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
        if self.pages.currentWidget() is self.welcome:
            self.session.store_custody(self.welcome.store_did_open)
        else:
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
        self.cancel_edit()
        focus = conversation.get("focus")
        self.chat.show_messages(conversation["messages"], conversation.get("branches"), focus)
        hit = next((m for m in self.chat.messages if focus is not None and m.message_id == focus), None)
        if hit is not None:
            hit.set_highlight(conversation.get("query") or "")
        self.title.setText(conversation["title"] or "New chat")
        self.sidebar.select(conversation["id"])
        self._set_busy(self.session.chats.generating)
        self.composer.setFocus()

    def _on_conversation_create(self, conversation_id: int) -> None:
        self.sidebar.select(conversation_id)
        self.session.chats.refresh()

    def _send(self, text: str) -> None:
        if self.editing is not None:
            if not self.session.chats.generating:
                self.session.chats.edit_and_resend(self.editing, text)
                self.cancel_edit()
            return
        if self.session.chats.send(text):
            self.composer.clear()

    def start_edit(self, message_id: int, text: str) -> None:
        """Edit a sent message in the composer; sending it branches the conversation there."""
        if self.session.chats.generating or not message_id:
            return
        self.editing = message_id
        self.composer.setPlainText(text)
        self.edit_banner.show()
        self.composer.setFocus()

    def cancel_edit(self) -> None:
        if self.editing is not None:
            self.editing = None
            self.composer.clear()
        self.edit_banner.hide()

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
            if result.get("stats"):
                answer.set_stats(result["stats"], result.get("n_ctx"))
            if not answer.text:
                answer.append("")
        self._set_busy(False)
        self.sidebar.select(self.session.chats.conversation_id)

    def _choose_attachments(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Attach to this chat", str(Path.home()))
        if names:
            self.attach_files(names)

    def attach_files(self, paths: list[str]) -> None:
        """Attach files to the open chat (dropped, or chosen with Attach file…)."""
        if self.session.store_ready:
            self.session.chats.attachments.attach(paths)

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
        self.adapter_picker.addItem(NO_ADAPTER, None)
        for r in reversed(records):
            label = f"Adapter {r.id} ({100 * r.improvement:+.0f}%)"
            self.adapter_picker.addItem(label, r.id)
        active = next((r.id for r in records if r.active), live)
        self._on_adapter_activate(active)

    def _on_adapter_activate(self, adapter_id: str | None) -> None:
        index = self.adapter_picker.findData(adapter_id) if adapter_id is not None else 0
        self.adapter_picker.setCurrentIndex(max(index, 0))

    def _on_personalize_finish(self, status: dict[str, Any]) -> None:
        state = status.get("state", "")
        if state == "failed":
            self._say("Personalization stopped: " + str(status.get("error") or "see the Personalize tab"))
        elif state in ("activated", "kept", "refused", "paused", "cancelled"):
            self._say(f"Personalization {state}")
        self.tray.job_did_finish(status)

    # -- top bar --------------------------------------------------------------------------------------

    def _on_models(self, names: list[str], active: str) -> None:
        self.model_picker.clear()
        self.model_picker.addItems(names)
        self.model_picker.setCurrentText(active)

    def _on_engine_fail(self, message: str) -> None:
        self._say(f"Model not loaded: {message}")
        QMessageBox.warning(self, "Model not loaded", message)

    def _edit_persona(self) -> None:
        session = self.session
        dialog = PersonaDialog(
            session.chats.system_prompt or "",
            session.chats.default_system_prompt,
            self,
            session.chats.options.get("temperature"),
        )
        dialog.accepted.connect(lambda: session.chats.set_persona(dialog.value()))
        dialog.accepted.connect(lambda: session.chats.set_options(temperature=dialog.temperature_value()))
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
            theme_mode=self.theme.mode,
            on_theme=self.theme.set_mode,
            parent=self,
        )
        dialog.setObjectName("settingsDialog")
        self.settings_dialog = dialog
        dialog.open()

    def _build_api_panel(self) -> ApiPanel:
        panel = ApiPanel(self._api_state)
        panel.api_will_toggle.connect(self.session.api.set)
        panel.token_will_rotate.connect(self.session.api.rotate_token)
        self.clients_panel = ClientsPanel(self.session.with_store)
        panel.layout().addRow(self.clients_panel)
        self.api_panel = panel
        return panel

    # -- misc -----------------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.status.setText(message)

    def _on_action_fail(self, message: str) -> None:
        self._say(message)
        QMessageBox.warning(self, "Hearth", message)

    def _on_theme_change(self, _mode: str) -> None:
        self._rerender()

    def _rerender(self) -> None:
        for widget in self.chat.messages:
            widget.append("")

    def changeEvent(self, event: QEvent) -> None:
        """The OS switched light/dark (the application palette changed): re-render the bubbles' colours.
        Here rather than an application-wide event filter, which ran Python for every event of every widget
        (a fifth of the time it took to open a chat)."""
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self._rerender()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """While Hearth is learning, ask: keep learning in the background (the job is its own process and
        the next window picks it up), pause it (it saves its progress and resumes later), or stay open."""
        if self.session.personalization.job_running:
            answer = self.ask_keep_training()
            if answer == "cancel":
                event.ignore()
                return
            if answer == "pause":
                self.session.personalization.pause()
        self.session.stop()
        self.models_view.shutdown()
        self.welcome.picker.shutdown()
        super().closeEvent(event)

    def ask_keep_training(self) -> str:
        """ "keep", "pause" or "cancel"; the box is `self.keep_training_box` while it is open (tests)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Hearth is learning",
            "Hearth is learning from your data. Keep learning in the background after the window closes?",
            parent=self,
        )
        box.setObjectName("keepTrainingBox")
        keep = box.addButton("Keep learning", QMessageBox.ButtonRole.AcceptRole)
        pause = box.addButton("Pause and close", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        self.keep_training_box = box
        box.exec()
        self.keep_training_box = None
        clicked = box.clickedButton()
        return "keep" if clicked is keep else "pause" if clicked is pause else "cancel"
