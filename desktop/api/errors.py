"""OpenAI-style error bodies, so clients written for OpenAI show Hearth's errors the way they show OpenAI's.

Every failure the API reports has the shape `{"error": {"message", "type", "param", "code"}}`, except on the
Ollama endpoints (`/api/...`), which answer Ollama's `{"error": "message"}`. Handlers raise
`ApiError`; the ASGI middlewares (which run outside FastAPI) send the same body with `send_error`, and
`QuietErrors` keeps unexpected exceptions' messages out of the log.
Messages never contain request content: they name the field and the limit, not the value.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Status → OpenAI's error type for it (OpenAI uses these names; clients switch on them).
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    501: "not_implemented_error",
    503: "server_error",
}


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and OpenAI-style fields to report."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self, ollama: bool = False) -> dict[str, Any]:
        """OpenAI's shape; Ollama's (`{"error": "message"}`) for its endpoints, which its clients parse."""
        if ollama:
            return {"error": self.message}
        return error_body(self.status, self.message, self.code, self.param)


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def send_error(send: Send, error: ApiError, ollama: bool = False) -> None:
    """Send error as a complete JSON response from raw ASGI code (middlewares)."""
    payload = json.dumps(error.body(ollama)).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class QuietErrors:
    """Outermost middleware: an unexpected exception is logged by type and frames, never by message.

    Starlette re-raises an unhandled exception after its 500 handler ran, and uvicorn would then log it
    with its message, which may quote a request's content. This stops it here instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("API request failed with %s\n%s", type(exc).__name__, frames)
            if scope["type"] == "http" and not started:
                error = ApiError(500, "internal server error (see the server log)", "internal_error")
                await send_error(send, error, ollama=scope["path"].startswith("/api/"))
