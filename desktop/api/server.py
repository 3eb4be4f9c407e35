"""Run the API in-process: uvicorn on a thread, bound to loopback, started and stopped by its owner.

`hearth serve` and the app's toggle both use `ApiServer`. The socket is bound here (not by uvicorn) so
`port=0` can pick a free port and the Host check knows that port before the first request arrives.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from desktop.api.app import ApiConfig, ApiState, Backend, create_app
from desktop.api.gate import ClientGate
from desktop.api.security import check_bind_host
from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.services import Services

DEFAULT_PORT = 8765
STARTUP_TIMEOUT_S = 30.0


class ApiServer:
    """`start()` binds and serves on a daemon thread; `stop()` finishes open requests briefly and joins."""

    def __init__(
        self,
        backend: Backend,
        gate: ClientGate,
        config: ApiConfig | None = None,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
    ) -> None:
        try:
            self.host = check_bind_host(host)
        except ValueError as exc:
            raise KnownError(str(exc)) from None
        self.requested_port = port
        self.state = ApiState(config or ApiConfig(), backend, gate)
        self._server = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_services(cls, services: Services, config: ApiConfig | None = None, port: int = DEFAULT_PORT) -> ApiServer:
        """Clients and their tokens are read from the encrypted store, which must be unlocked here."""
        from desktop.engine.executor import StoreProxy

        store = services.store()
        gate = ClientGate(store.connect_again)
        proxy = StoreProxy(services.store_executor, store)  # chat jobs run on the engine executor
        backend = Backend(engine=services.engine, store=lambda: proxy, executor=services.engine_executor)
        return cls(backend, gate, config, port)

    @property
    def port(self) -> int:
        return self.state.port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """Where Ollama clients point (`/api/...` lives under it) and `/mcp` is served."""
        return self.base_url.removesuffix("/v1")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        import uvicorn

        sock = self._bind()
        self.state.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,  # paths only, but a local API has no need for a request log
            lifespan="on",  # runs the MCP session manager's task group
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="hearth-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise KnownError("the API server did not start (see the log above)")
            time.sleep(0.02)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise KnownError(
                f"cannot listen on {self.host}:{self.requested_port} ({exc.strerror}); choose another --port"
            ) from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server thread ends (or timeout); True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop generation in progress, refuse queued requests, shut uvicorn down and join its thread."""
        self.state.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self._server = None
        self.state.gate.close()  # after uvicorn finished its last requests, which still log their access
