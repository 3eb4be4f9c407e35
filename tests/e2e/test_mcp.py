"""The MCP server as an MCP host uses it: the SDK's own client over stdio (`hearth mcp`) and over Streamable
HTTP (`/mcp` on the API port), on documents added with `hearth add`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from storage.access_log import AccessLog
from storage.clients import Clients

if TYPE_CHECKING:
    from storage.store import Store
    from tests.e2e.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("docs_corpus", ROOT / "tests/data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]
DOCUMENT_TOOLS = {"search_documents", "get_document", "list_documents"}


@pytest.fixture
def documents(hearth: Cli, store: Store, tmp_path: Path) -> Path:
    """A PDF (pages) and a Markdown file (sections), added with `hearth add` into the test's store."""
    folder = tmp_path / "docs"
    folder.mkdir()
    corpus.write_pdf(
        folder / "baking.pdf",
        [
            "Bread notes. Chapter one covers flour types: spelt, einkorn and emmer.",
            "The sourdough starter ferments best at 24 degrees Celsius, fed daily with rye flour and water.",
        ],
    )
    (folder / "garden.md").write_text(
        "# Garden notes\n\nThe allotment is plot 14, near the east gate.\n\n"
        "## Roses\n\nPrune the roses in late February, just above an outward-facing bud.\n",
        encoding="utf-8",
    )
    added = hearth("add", str(folder), "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == 2
    return folder


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content


async def _document_tools(client: Client) -> None:
    """What every documents-scoped client gets: cited passages, one page, one section, the list."""
    found = _structured(await client.call_tool("search_documents", {"query": "sourdough starter temperature"}))
    best = found["passages"][0]
    assert Path(best["source"]).name == "baking.pdf" and best["citation"] == "baking.pdf, p. 2"
    assert "24 degrees" in best["text"]
    page = _structured(await client.call_tool("get_document", {"document": "baking.pdf", "page": 2}))
    assert "24 degrees" in page["text"] and "einkorn" not in page["text"] and page["locations"] == ["p. 2"]
    whole = _structured(await client.call_tool("get_document", {"document": "baking.pdf"}))
    assert "einkorn" in whole["text"] and "24 degrees" in whole["text"]
    roses = _structured(await client.call_tool("get_document", {"document": "garden.md", "section": "roses"}))
    assert "February" in roses["text"] and "plot 14" not in roses["text"]
    listed = _structured(await client.call_tool("list_documents", {}))
    assert sorted(Path(d["path"]).name for d in listed["documents"]) == ["baking.pdf", "garden.md"]
    missing = await client.call_tool("get_document", {"document": "nothing.pdf"})
    assert missing.is_error and "no indexed document" in missing.content[0].text


def _stdio(*args: str) -> StdioServerParameters:
    names = ("HEARTH_HOME", "HEARTH_PASSPHRASE", "HEARTH_KEYRING")
    env = {name: os.environ[name] for name in names} | {"PYTHONPATH": str(ROOT)}
    return StdioServerParameters(command=sys.executable, args=["-m", "desktop.cli", "mcp", *args], env=env, cwd=ROOT)


def test_stdio_serves_cited_passages_and_logs_each_call(documents: Path, store: Store) -> None:
    async def session() -> None:
        async with Client(_stdio(), read_timeout_seconds=120) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == DOCUMENT_TOOLS  # no chats unless the user grants them
            assert all(t.annotations.read_only_hint for t in (await client.list_tools()).tools)
            await _document_tools(client)

    asyncio.run(session())
    log = [(e.client, e.endpoint, e.passages) for e in AccessLog(lambda: store.db).recent(20)]
    assert ("mcp-stdio", "mcp:search_documents", 2) in log and ("mcp-stdio", "mcp:list_documents", 0) in log
    assert "sourdough" not in str(store.db.execute("SELECT * FROM api_access").fetchall())


def test_stdio_as_a_named_client_offers_chats_and_stops_when_revoked(documents: Path, store: Store) -> None:
    Clients(store.settings).add("claude", frozenset({"documents", "chats"}))
    chat = store.chats.create("Holiday plans")
    store.chats.add_message(chat, "user", "We fly to Lisbon on the ninth of June.")

    async def session() -> None:
        async with Client(_stdio("--client", "claude"), read_timeout_seconds=120) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {*DOCUMENT_TOOLS, "search_chats"}
            chats = _structured(await client.call_tool("search_chats", {"query": "Lisbon"}))
            assert chats["messages"][0]["title"] == "Holiday plans" and "Lisbon" in chats["messages"][0]["text"]
            Clients(store.settings).revoke("claude")  # from another connection, while the server runs
            refused = await client.call_tool("search_documents", {"query": "roses"})
            assert refused.is_error and "revoked" in refused.content[0].text

    asyncio.run(session())


def _http(server: Any, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return streamable_http_client(f"{server.root_url}/mcp", http_client=httpx2.AsyncClient(headers=headers))


def test_streamable_http_on_the_api_port_is_token_and_scope_checked(documents: Path, store: Store, api_server) -> None:
    server = api_server()
    chat_only = Clients(store.settings).add("editor", frozenset({"chat"}))

    async def session() -> None:
        async with Client(_http(server, server.token), read_timeout_seconds=120) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {*DOCUMENT_TOOLS, "search_chats"}
            await _document_tools(client)
        async with Client(_http(server, chat_only), read_timeout_seconds=120) as client:
            assert (await client.list_tools()).tools == []  # no documents scope, no document tools
            refused = await client.call_tool("search_documents", {"query": "roses"})
            assert refused.is_error and "'documents' scope" in refused.content[0].text

    asyncio.run(session())
    server.stop()
    log = [(e.client, e.endpoint) for e in AccessLog(lambda: store.db).recent(50)]
    assert ("default", "mcp:get_document") in log and not any(c == "editor" for c, _ in log)


def test_a_revoked_token_gets_401_on_the_next_mcp_request(documents: Path, store: Store, api_server) -> None:
    server = api_server()
    token = Clients(store.settings).add("host", frozenset({"documents"}))
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    with httpx2.Client(base_url=server.root_url, headers=headers, timeout=60) as http:
        assert http.post("/mcp", json=initialize).status_code == 200
        Clients(store.settings).revoke("host")
        assert http.post("/mcp", json=initialize).status_code == 401
