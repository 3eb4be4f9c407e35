"""`hearth_docs: true`: an API answer grounded in the user's indexed documents, with its sources."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from storage.ingest import Ingester

NOTE = (
    "Grandma Hilda's plum cake\n\n"
    "The plum cake needs exactly seven cardamom pods, crushed, and bakes for 55 minutes at 180 degrees.\n"
)
QUESTION = "How many cardamom pods go into Grandma Hilda's plum cake?"


@pytest.fixture
def server(api_server, engine, store, tmp_path: Path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "plum-cake.md").write_text(NOTE, encoding="utf-8")
    (folder / "taxes.md").write_text("Quarterly tax filing is due in April, July, October.\n", encoding="utf-8")
    summary = Ingester(lambda: store.db).add([folder])
    assert not summary.cancelled
    return api_server(engine=engine)


def _post(server, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=180)


def test_grounded_answer_cites_the_document(server) -> None:
    body = {
        "model": "hearth",
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": 32,
        "hearth_docs": True,
    }
    response = _post(server, body)
    assert response.status_code == 200, response.text
    data = response.json()
    sources = data["hearth_sources"]
    assert sources and "plum-cake.md" in json.dumps(sources)
    assert data["usage"]["prompt_tokens"] > 40  # the passage went into the prompt
    plain = _post(server, {**body, "hearth_docs": False}).json()
    assert "hearth_sources" not in plain
    assert plain["usage"]["prompt_tokens"] < data["usage"]["prompt_tokens"]


def test_streamed_grounded_answer_ends_with_sources(server) -> None:
    body = {
        "model": "hearth",
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": 16,
        "hearth_docs": True,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.stream(
        "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=180
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert "plum-cake.md" in json.dumps(final["hearth_sources"])
