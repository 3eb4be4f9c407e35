"""What stands between the local API and every other program and web page on the machine.

Checks, in the order the middleware applies them (cheapest and least revealing first):
1. Host header is a loopback name with the server's port, else 403. A web page can make its own domain
   resolve to 127.0.0.1 (DNS rebinding, Ollama's CVE-2024-28224); its requests then carry its own name as
   Host, so refusing non-loopback names closes that door even before the token check.
2. A browser `Origin` that the user has not allowed gets 403; allowed origins get CORS headers (Starlette's
   CORSMiddleware, added by the app factory). No origin is allowed by default.
3. Bearer token of a named client (storage/clients.py), checked by the `ClientGate` against the store as it
   is now, else 401. Without a token, only the Ollama endpoints in `TOKENLESS_PATHS`, and only while the
   user has turned tokenless Ollama access on; such requests get the chat and embeddings scopes and the
   base model. Scopes are enforced by each route (`require`), since only it knows what a request reaches.
4. Request body above `max_body_bytes`, else 413 — checked on Content-Length and again while reading, so
   a chunked upload cannot get around it. The body is buffered (it is small by construction) and replayed.
After the response, the access log gets the client, the endpoint and the number of passages returned
(MCP tool calls are logged by the tools themselves, one entry per call).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desktop.api.errors import ApiError, send_error

if TYPE_CHECKING:
    from fastapi import Request

    from desktop.api.gate import ClientGate
    from storage.clients import Client

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_MAX_BODY_BYTES = 1 << 20
# Ollama endpoints a tokenless request may reach when the user allows it: listing, chat and embeddings.
TOKENLESS_PATHS = frozenset(
    {"/api/version", "/api/tags", "/api/show", "/api/ps", "/api/chat", "/api/generate", "/api/embed", "/api/embeddings"}
)
OLLAMA_PREFIX = "/api/"
MCP_PATH = "/mcp"


def client_of(request: Request) -> Client:
    """The client the middleware authenticated for this request."""
    return request.scope["state"]["hearth_client"]


def require(request: Request, scope: str) -> Client:
    """403 unless this request's client holds `scope`."""
    client = client_of(request)
    if not client.allows(scope):
        raise ApiError(
            403,
            f"the client {client.name!r} lacks the {scope!r} scope (`hearth clients add NAME --scopes {scope}`)",
            "insufficient_scope",
        )
    return client


# --- host names --------------------------------------------------------------------------------------


def check_bind_host(host: str) -> str:
    """The server binds loopback only; anything else is refused, not just discouraged."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"the Hearth API only listens on a loopback address (127.0.0.1 or ::1), not {host!r}")
    return str(address)


def host_allowed(host_header: str, port: int) -> bool:
    """True for `localhost`, `127.0.0.1` or `[::1]` (any case) with `port` (or no port when that is 80)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            return False
    else:
        name, sep, port_text_ = host.partition(":")
        port_text = port_text_ if sep else None
    if name not in LOOPBACK_NAMES:
        return False
    if port_text is None:
        return port == 80
    return port_text.isdigit() and int(port_text) == port


# --- the middleware ----------------------------------------------------------------------------------


class SecurityMiddleware:
    """Host, origin, client and size checks for every HTTP request, before any route runs; then the log.

    `gate` re-reads the clients from the store as they change, so a rotated or revoked token takes effect
    on the next request, also when another process changed it.
    Preflight requests (when origins are allowed) go to the CORS layer without a token, because browsers
    never send credentials on a preflight.
    """

    def __init__(
        self,
        app: ASGIApp,
        port: Callable[[], int],
        gate: ClientGate,
        allowed_origins: tuple[str, ...] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.port = port
        self.gate = gate
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # no websockets
        ollama = scope["path"].startswith(OLLAMA_PREFIX)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        error = self._check_headers(scope, headers)
        if error is not None:
            await send_error(send, error, ollama)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self.app(scope, receive, send)  # CORS preflight, origin already checked
            return
        client, error = await self._check_client(scope["path"], headers)
        if error is not None:
            await send_error(send, error, ollama)
            return
        body, error = await self._read_body(headers, receive)
        if error is not None:
            await send_error(send, error, ollama)
            return
        state = scope.setdefault("state", {})
        state["hearth_client"] = client
        await self.app(scope, _replay(body, receive), send)
        if scope["path"] != MCP_PATH:
            self.gate.record(client.name, f"{scope['method']} {scope['path']}", state.get("hearth_passages", 0))

    def _check_headers(self, scope: Scope, headers: dict[str, str]) -> ApiError | None:
        if not host_allowed(headers.get("host", ""), self.port()):
            return ApiError(403, "the Host header must be a loopback name (localhost or 127.0.0.1)", "bad_host")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            return ApiError(
                403,
                "this origin is not allowed; start the server with --allow-origin to allow it",
                "bad_origin",
            )
        return None

    async def _check_client(self, path: str, headers: dict[str, str]) -> tuple[Client, None] | tuple[None, ApiError]:
        challenge = {"WWW-Authenticate": "Bearer"}
        scheme, _, presented = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            tokenless = await self.gate.resolve(None) if path in TOKENLESS_PATHS else None
            if tokenless is not None:
                return tokenless, None
            return None, ApiError(
                401,
                "You didn't provide an API key. Send 'Authorization: Bearer <token>'; `hearth api-token` makes one.",
                "missing_api_key",
                headers=challenge,
            )
        client = await self.gate.resolve(presented.strip())
        if client is None:
            return None, ApiError(401, "Incorrect API key provided.", "invalid_api_key", headers=challenge)
        return client, None

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> tuple[bytes, ApiError | None]:
        too_large = ApiError(
            413,
            f"the request body is larger than the limit of {self.max_body_bytes} bytes",
            "request_too_large",
        )
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            return b"", ApiError(400, "invalid Content-Length", "bad_request")
        if length is not None and int(length) > self.max_body_bytes:
            return b"", too_large
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", ApiError(400, "the client disconnected", "client_disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", too_large
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the buffered body once, then the real channel (for disconnect notices)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
