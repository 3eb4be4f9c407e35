"""An MCP server over the user's own knowledge, on the official `mcp` SDK: read-only tools with citations.

Tools: `search_documents` (hybrid search, passages with citations), `get_document` (one document's text, or
one page / section of it), `list_documents` (need the `documents` scope), and `search_chats` (needs the
`chats` scope, which the user grants a client explicitly). A client sees only the tools its scopes allow.

Two transports, one server definition:
- Streamable HTTP at `/mcp` on the `hearth serve` port (`for_http`): behind the API's security layer (Host,
  Origin, bearer token), so the SDK's own DNS-rebinding check is off rather than configured twice; the
  client is the one the token names, looked up per request, so a revoked token stops at once.
- stdio (`hearth mcp`, `run_stdio`) for desktop assistants that launch it as a subprocess: the process
  unlocks the store itself; it acts as the named client given with `--client` (re-checked on every call),
  or as `mcp-stdio` with the `documents` scope.
Every tool call adds one access-log entry: client, `mcp:<tool>`, number of passages, never the content.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from desktop.api.knowledge import Library
from storage import clients as clients_mod
from storage.clients import Client
from storage.errors import KnownError

if TYPE_CHECKING:
    from starlette.routing import Route

    from desktop.api.app import ApiState
    from storage.store import Store

TOOL_SCOPES = {
    "search_documents": "documents",
    "get_document": "documents",
    "list_documents": "documents",
    "search_chats": "chats",
}
STDIO_CLIENT = Client("mcp-stdio", frozenset({"documents"}), "", "")
INSTRUCTIONS = (
    "Hearth holds the user's own documents (and, if the user allows it, their chats with Hearth). "
    "search_documents finds passages with citations; get_document reads one document or one page/section of it. "
    "Cite passages by their `citation` field."
)

# Who is calling: the request (HTTP) or None (stdio) and the library -> the client, or a ToolError.
# Runs on the library's thread, so it may read the library's connection.
Identify = Callable[[Any, Library], Client]


def build(library: Library, identify: Identify) -> MCPServer:
    server = MCPServer("hearth", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)

    async def caller(ctx: Context, tool: str) -> Client:
        client = await library.call(identify, ctx.request_context.request, library)
        if not client.allows(TOOL_SCOPES[tool]):
            raise ToolError(f"this client lacks the {TOOL_SCOPES[tool]!r} scope needed for {tool}")
        return client

    async def run(ctx: Context, tool: str, fn: Callable[..., Any], *args: Any) -> Any:
        client = await caller(ctx, tool)
        try:
            result = await library.call(fn, *args)
        except KnownError as exc:
            raise ToolError(str(exc)) from None
        passages = len(result) if isinstance(result, list) else 1
        await library.call(library.record, client.name, tool, passages if tool != "list_documents" else 0)
        return result

    @server.tool(annotations=read_only)
    async def search_documents(query: str, ctx: Context, k: int = 5) -> dict[str, Any]:
        """Search the user's indexed documents by keywords and meaning; returns up to k passages (max 20),
        best first, each with a `citation` (document and page/section) and its source path."""
        return {"passages": await run(ctx, "search_documents", library.search_documents, query, k)}

    @server.tool(annotations=read_only)
    async def get_document(
        document: str, ctx: Context, page: int | None = None, section: str | None = None
    ) -> dict[str, Any]:
        """The text of one indexed document (its id, path or file name from list_documents); `page` limits it
        to one page, `section` to the sections whose heading contains that text."""
        return await run(ctx, "get_document", library.get_document, document, page, section)

    @server.tool(annotations=read_only)
    async def list_documents(ctx: Context) -> dict[str, Any]:
        """The user's indexed documents: id, path, kind, number of chunks, last update."""
        return {"documents": await run(ctx, "list_documents", library.list_documents)}

    @server.tool(annotations=read_only)
    async def search_chats(query: str, ctx: Context, k: int = 10) -> dict[str, Any]:
        """Search the user's past chats with Hearth (only for clients the user gave the `chats` scope)."""
        return {"messages": await run(ctx, "search_chats", library.search_chats, query, k)}

    async def hide_forbidden_tools(ctx: Any, call_next: Any) -> Any:
        """`tools/list` shows a client only the tools its scopes allow (the result is the wire dict here)."""
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        try:
            client = await library.call(identify, ctx.request, library)
        except ToolError:
            return {**result, "tools": []}
        allowed = [t for t in result.get("tools", []) if client.allows(TOOL_SCOPES.get(t.get("name"), "documents"))]
        return {**result, "tools": allowed}

    server.middleware.append(hide_forbidden_tools)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hearth")
    except PackageNotFoundError:  # a bundle without package metadata
        return "0"


# --- Streamable HTTP on the API port -------------------------------------------------------------------


class HttpMount:
    """The MCP endpoint inside the FastAPI app: `route()` to mount, `running()` for the app's lifespan."""

    def __init__(self, server: MCPServer, library: Library) -> None:
        from mcp.server.transport_security import TransportSecuritySettings

        self.library = library
        # Builds the SDK's session manager; the API's middleware already checked Host, Origin and token.
        server.streamable_http_app(
            streamable_http_path="/mcp",
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.session_manager = server.session_manager

    def route(self) -> Route:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
        from starlette.routing import Route

        return Route("/mcp", endpoint=StreamableHTTPASGIApp(self.session_manager), methods=["GET", "POST", "DELETE"])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            async with self.session_manager.run():
                yield
        finally:
            self.library.close()


def for_http(state: ApiState) -> HttpMount:
    assert state.backend.store is not None

    def identify(request: Any, _: Library) -> Client:
        client = request.scope["state"]["hearth_client"] if request is not None else None
        if client is None:
            raise ToolError("no client")
        return client

    library = Library(lambda: state.backend.store().connect_again())  # type: ignore[misc]
    return HttpMount(build(library, identify), library)


# --- stdio: `hearth mcp` -------------------------------------------------------------------------------


def run_stdio(store: Store, client_name: str | None) -> None:
    """Serve MCP on stdin/stdout until the host closes it."""
    library = Library(store.connect_again)

    def identify(_: Any, lib: Library) -> Client:
        if client_name is None:
            return STDIO_CLIENT
        # Re-read on every call, so revoking the client stops a running `hearth mcp` too.
        row = lib.db().execute("SELECT value FROM settings WHERE key = ?", [clients_mod.CLIENTS_SETTING]).fetchone()
        client = clients_mod.parse(row[0] if row else None).get(client_name)
        if client is None:
            raise ToolError(f"the API client {client_name!r} was revoked or never existed")
        return client

    server = build(library, identify)
    try:
        server.run("stdio")
    finally:
        library.close()
