"""`hearth mcp`: the MCP server over stdio, for desktop assistants that launch it (Claude Desktop, IDEs)."""

from __future__ import annotations

import argparse

from desktop.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    mcp = sub.add_parser("mcp", help="serve your documents to an MCP host over stdio (read-only, with citations)")
    mcp.add_argument(
        "--client",
        help="act as this API client (`hearth clients add NAME --scopes documents,chats`); its scopes decide "
        "the tools, and revoking it stops them. Default: documents only",
    )
    mcp.set_defaults(func=mcp_command)


def mcp_command(args: argparse.Namespace, services: Services) -> int:
    from desktop.api.mcp_server import run_stdio
    from storage.clients import Clients

    store = services.store()
    if args.client is not None:
        Clients(store.settings).get(args.client)  # a clear error now, not a failed tool call later
    run_stdio(store, args.client)
    return 0
