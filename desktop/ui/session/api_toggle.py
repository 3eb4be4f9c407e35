"""The API toggle: the local API (OpenAI, Ollama and MCP on one port) hosted by the window.

Chat requests (OpenAI's and Ollama's) run on the engine executor the window's replies run on (one line for the one
llama context); their store calls go to the store executor. The client gate and MCP's library read through connections
of their own (desktop/engine/side_connection.py). Starting and stopping the server wait on its thread, which may wait
on the store, so they run on a third executor of their own, never on the GUI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from desktop.engine.executor import Executor
from desktop.ui.workers import Worker
from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.ui.session import ChatSession

API_KEY = "ui.api_enabled"


class ApiToggle(QObject):
    api_did_change = Signal(object)  # {"running", "url", "token"} or {"running": False}

    def __init__(self, session: ChatSession) -> None:
        super().__init__(session)
        self._session = session
        self._executor = Executor("api")
        self._worker = Worker(self._executor)
        self._server: Any = None

    def set(self, on: bool) -> None:
        """Start or stop the server on 127.0.0.1; remembered in the encrypted settings."""
        s = self._session
        s.store_worker.submit(lambda: s.store().settings.set(API_KEY, on), on_error=s.fail)
        if on:
            s.store_worker.submit(self._token, on_done=self._start, on_error=s.fail)
        else:
            self._worker.submit(self._stop, on_done=self.api_did_change.emit, on_error=s.fail)

    def rotate_token(self) -> None:
        s = self._session

        def task() -> str | None:
            from storage.clients import Clients

            return Clients(s.store().settings).default_token(rotate=True)

        def done(token: str | None) -> None:
            self.api_did_change.emit(self._state(token))  # the running server sees it on its next request

        s.store_worker.submit(task, on_done=done, on_error=s.fail)

    def _token(self) -> str | None:
        """The default client's token when made now (first use); None once made (only its hash is kept)."""
        from storage.clients import Clients

        return Clients(self._session.store().settings).default_token()

    def _start(self, token: str | None) -> None:
        s = self._session

        def task() -> dict[str, Any]:
            from desktop.api.app import Backend
            from desktop.api.gate import ClientGate
            from desktop.api.server import ApiServer

            if self._server is None or not self._server.running:
                store = s.store_proxy()
                gate = ClientGate(store.target.connect_again)  # its own connection, on its own thread
                backend = Backend(engine=self._loaded_engine, store=lambda: store, executor=s.services.engine_executor)
                self._server = ApiServer(backend, gate)
                self._server.start()
            return self._state(token)

        self._worker.submit(task, on_done=self.api_did_change.emit, on_error=s.fail)

    def _stop(self) -> dict[str, Any]:
        if self._server is not None:
            self._server.stop()
            self._server = None
        return {"running": False}

    def _state(self, token: str | None) -> dict[str, Any]:
        if self._server is None:
            return {"running": False}
        return {"running": self._server.running, "url": self._server.base_url, "token": token}

    def _loaded_engine(self) -> Any:
        """For API requests (on the engine executor): the window's engine once loaded."""
        engine = self._session.engine
        if engine is None:
            raise KnownError("the model is still loading; try again in a moment")
        return engine

    def close(self) -> None:
        """Stop the server (waiting for it here: a queued stop would be dropped by the executor's close)."""
        self._worker.close()
        if self._server is not None:
            self._executor.call(self._stop)
        self._executor.close()
