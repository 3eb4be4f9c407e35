"""`hearth serve` and `hearth api-token` as a user runs them: subprocesses over a real encrypted store."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

import httpx

from storage.store import Store

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, Serving

QUESTION = "What is the capital of France?"


def test_api_token_is_shown_once_then_only_rotated(hearth: Cli, store: Store) -> None:
    store.close()
    first = hearth("api-token")
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert token.startswith("hearth-")
    again = hearth("api-token")
    assert again.returncode == 1 and again.stdout == ""
    assert "kept only as a hash" in again.stderr and "--rotate" in again.stderr
    rotated = hearth("api-token", "--rotate").stdout.strip()
    assert rotated.startswith("hearth-") and rotated != token


def test_serve_answers_a_request_and_stops_on_sigterm(
    hearth: Cli, store: Store, serving: Serving, plain_answer: Any
) -> None:
    store.close()
    token = hearth("api-token").stdout.strip()
    with serving() as (server, root):
        base_url = f"{root}/v1"
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "model": "hearth",
            "messages": [{"role": "user", "content": QUESTION}],
            "temperature": 0,
            "max_tokens": 24,
        }
        response = httpx.post(f"{base_url}/chat/completions", json=body, headers=headers, timeout=120)
        assert response.status_code == 200, response.text
        # The server's model ran with --threads 1: the same tokens as plain llama.cpp with one thread.
        assert response.json()["choices"][0]["message"]["content"] == plain_answer(QUESTION, 24, threads=1)
        assert httpx.get(f"{base_url}/models", timeout=30).status_code == 401
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        assert token not in server.stderr.read()  # the token is never logged


def test_revoked_and_rotated_tokens_get_401_from_an_already_running_serve(
    hearth: Cli, store: Store, serving: Serving
) -> None:
    store.close()
    editor = hearth("clients", "add", "editor", "--scopes", "chat").stdout.strip()
    default = hearth("api-token").stdout.strip()
    with serving() as (server, root):

        def status(token: str, path: str = "/api/tags") -> int:
            return httpx.get(f"{root}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code

        assert status(editor) == 200 and status(default, "/v1/models") == 200
        assert hearth("clients", "revoke", "editor").returncode == 0
        assert status(editor) == 401  # the next request, no restart
        rotated = hearth("api-token", "--rotate").stdout.strip()
        assert status(default, "/v1/models") == 401 and status(rotated, "/v1/models") == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    log = hearth("clients", "log").stdout
    assert "editor" in log and "GET /api/tags" in log and "GET /v1/models" in log


def test_serve_refuses_a_bad_port(hearth: Cli, store: Store) -> None:
    store.close()
    result = hearth("serve", "--port", "70000")
    assert result.returncode == 1
    assert result.stderr.strip() == "hearth: --port must be between 0 and 65535, not 70000"
