"""The window's model of the app: the store and the model, plus one feature object per tab, like Anki's
`Collection` (`col.decks`, `col.models`).

`ChatSession` owns the lifetime: the two `Worker` relays over `Services`' executors, unlocking the store,
loading the model, shutdown. Each feature is a small QObject with its own `<noun>_<did|will>_<verb>`
signals, reached as an attribute:

- `session.chats`: conversations and replies (`desktop/ui/session/chats.py`)
- `session.documents`: the documents tab (`documents.py`)
- `session.personalization`: adapter versions and the training job (`personalization.py`)
- `session.api`: the hosted API toggle (`api_toggle.py`)
- `session.passphrase`: the unlock dialog's bridge (`passphrase.py`)

Widgets call these methods and listen to these signals; they never see a Store or an Engine, so the GUI
thread cannot block on SQLCipher or llama.cpp by accident. Tests drive the window through the same objects.

Call sites before this split map one to one: `session.send/stop/regenerate/new_chat/open_conversation/...`
-> `session.chats.send/stop/regenerate/new_chat/open/...`; `session.load_documents/add_documents/
forget_document/stop_ingest` -> `session.documents.load/add/forget/stop_ingest`; `session.load_adapters/
activate_adapter/rollback_adapter/delete_adapter/sync_adapter/start_/pause_/cancel_/poll_personalization`
-> `session.personalization.load/activate/rollback/delete/sync/start/pause/cancel/poll`;
`session.set_api/rotate_api_token` -> `session.api.set/rotate_token`; the chat organisation's
`edit_and_resend/switch_branch/pin/set_folder/trash/restore/purge_trash` -> `session.chats.<same>`,
`set_chat_options/chat_options` -> `session.chats.set_options/options`; each signal moved with its feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from desktop.engine.conversation import DEFAULT_SYSTEM_PROMPT
from desktop.engine.executor import StoreProxy
from desktop.services import Services
from desktop.ui.session.api_toggle import API_KEY, ApiToggle
from desktop.ui.session.chats import DEFAULT_PERSONA_KEY, ChatsFeature
from desktop.ui.session.documents import DocumentsFeature
from desktop.ui.session.passphrase import PassphraseBridge
from desktop.ui.session.personalization import PersonalizationFeature
from desktop.ui.workers import Worker

if TYPE_CHECKING:
    from pathlib import Path

    from desktop.engine import Engine
    from storage.store import Store

log = logging.getLogger(__name__)

THREADS_KEY = "ui.threads"

__all__ = ["ChatSession", "PassphraseBridge"]


class ChatSession(QObject):
    store_did_open = Signal()
    store_did_fail = Signal(str)
    models_did_load = Signal(list, str)  # model names, active name
    engine_will_load = Signal(str)
    engine_did_load = Signal(str)
    engine_did_fail = Signal(str)
    action_did_succeed = Signal(str)  # one line for the status bar
    action_did_fail = Signal(str)

    def __init__(self, services: Services, passphrase: PassphraseBridge | None = None) -> None:
        super().__init__()
        self.services = services
        self.passphrase = passphrase
        self.store_worker = Worker(services.store_executor)
        self.engine_worker = Worker(services.engine_executor)
        self.store_ready = False
        self.engine_ready = False
        self.model_name = ""
        self.engine: Engine | None = None  # the loaded engine: its path and threads are read here, never its context
        self._threads: int | None = None
        self.chats = ChatsFeature(self)
        self.documents = DocumentsFeature(self)
        self.personalization = PersonalizationFeature(self)
        self.api = ApiToggle(self)

    # -- the store (methods for the features) ---------------------------------------------------------

    def store(self) -> Store:
        """On the store executor only."""
        return self.services.store()

    def store_proxy(self) -> StoreProxy:
        """The Store for work on another executor (the engine's): each call runs on the store executor."""
        executor = self.services.store_executor
        return StoreProxy(executor, executor.call(self.services.store))

    def fail(self, message: str) -> None:
        self.action_did_fail.emit(message)

    def open_store(self) -> None:
        self.store_worker.submit(self._open_store, on_done=self._on_store_open, on_error=self.store_did_fail.emit)

    def _open_store(self) -> dict[str, Any]:
        self.store().chats.purge_trash()  # deleted in a window that closed before it could purge them
        settings = self.store().settings
        return {key: settings.get(key) for key in (DEFAULT_PERSONA_KEY, THREADS_KEY, API_KEY)}

    def _on_store_open(self, saved: dict[str, Any]) -> None:
        self.store_ready = True
        self.chats.default_system_prompt = saved[DEFAULT_PERSONA_KEY] or DEFAULT_SYSTEM_PROMPT
        self._threads = saved[THREADS_KEY]
        self.store_did_open.emit()
        self.chats.refresh()
        self.load_engine()
        self.documents.load()
        self.documents.start_watcher()
        if saved[API_KEY]:
            self.api.set(True)
        self.personalization.load()
        self.personalization.poll()  # a job started before this window (or by the CLI) is shown too

    def change_passphrase(self, new_passphrase: str) -> None:
        self.store_worker.submit(
            lambda: self.store().change_passphrase(new_passphrase),
            on_done=lambda _: self.action_did_succeed.emit("Passphrase changed"),
            on_error=self.fail,
        )

    def store_custody(self, on_done: Any) -> None:
        self.store_worker.submit(lambda: self.store().custody, on_done=on_done, on_error=self.fail)

    def with_store(self, task: Callable[[Store], Any], on_done: Any) -> None:
        """Run task(store) on the store executor, its result to on_done on the GUI thread (views' own queries)."""
        self.store_worker.submit(lambda: task(self.store()), on_done=on_done, on_error=self.fail)

    # -- the model ------------------------------------------------------------------------------------

    def load_engine(self) -> None:
        self.engine_will_load.emit("")
        self.engine_worker.submit(self._load_engine, None, on_done=self._on_engine_load, on_error=self._engine_fail)

    def _load_engine(self, model_name: str | None) -> tuple[Engine, str]:
        """On the engine executor: (re)load the model, then put the personal adapter on it."""
        from desktop.engine import models

        services = self.services
        if model_name is not None:
            engine = services.reload_engine(models.use(model_name).path, self._threads, apply_adapter=False)
        elif not services.engine_loaded or (self._threads and services.engine().threads != self._threads):
            engine = services.reload_engine(None, self._threads, apply_adapter=False)
        else:
            engine = services.engine()
        self.personalization.apply(engine)
        names = {m.path.resolve(): m.name for m in models.list_models()}
        return engine, names.get(engine.path.resolve(), engine.path.name)

    def _on_engine_load(self, loaded: tuple[Engine, str]) -> None:
        self.engine, self.model_name = loaded
        self.engine_ready = True
        self.engine_did_load.emit(self.model_name)
        self.load_models()

    def _engine_fail(self, message: str) -> None:
        self.engine_ready = False
        self.engine_did_fail.emit(message)

    def load_models(self) -> None:
        def task() -> tuple[list[str], str]:
            from desktop.engine import models

            return [m.name for m in models.list_models()], self.model_name

        self.engine_worker.submit(task, on_done=lambda r: self.models_did_load.emit(*r), on_error=self.fail)

    def switch_model(self, name: str, remember: bool = True) -> None:
        """Load another model; `remember`: this chat keeps it (opening the chat later switches back)."""
        if self.chats.generating:
            return
        if remember:
            self.chats.set_options(model=name)
        if name == self.model_name:
            return
        self.engine_ready = False
        self.engine_will_load.emit(name)
        self.engine_worker.submit(self._load_engine, name, on_done=self._on_engine_load, on_error=self._engine_fail)

    def import_model(self, path: Path) -> None:
        def task() -> str:
            from desktop.engine import models

            model, _ = models.add(path)
            return f"Imported model {model.name}"

        def done(message: str) -> None:
            self.action_did_succeed.emit(message)
            self.load_models()

        self.engine_worker.submit(task, on_done=done, on_error=self.fail)

    def set_threads(self, threads: int) -> None:
        """Saved in the encrypted settings and applied by reloading the model (a second or two)."""
        self._threads = threads
        self.store_worker.submit(lambda: self.store().settings.set(THREADS_KEY, threads), on_error=self.fail)
        if self.engine_ready and not self.chats.generating:
            self.load_engine()

    @property
    def threads(self) -> int | None:
        return self.engine.threads if self.engine is not None else self._threads

    # -- lifetime -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the window's reply (Esc, quitting)."""
        self.chats.stop()

    def shutdown(self) -> None:
        """Stop a reply, unblock a waiting unlock, stop the API, then stop delivering results; the
        executors finish their current task in `Services.close()`."""
        if self.passphrase is not None:
            self.passphrase.close()
        self.chats.stop()
        self.documents.close()
        self.personalization.close()
        self.api.close()
        if self.store_ready:  # Undo ends with the window: deleted chats are deleted (waited for, as close
            try:  # cancels queued work; the GUI thread is ending anyway)
                self.store_worker.call(lambda: self.store().chats.purge_trash())
            except Exception:
                log.exception("could not empty the trash at shutdown; it is emptied at the next unlock")
        self.engine_worker.close()
        self.store_worker.close()
