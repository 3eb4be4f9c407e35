"""The local API's front door, over real HTTP on a loopback port: token, Host, Origin, size, error bodies."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from desktop.api.security import check_bind_host, host_allowed
from desktop.api.server import ApiServer
from storage.clients import DEFAULT_CLIENT, Clients


def _client(server: ApiServer, token: str | None = "server", **headers: str) -> httpx.Client:
    if token == "server":
        token = server.token
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


def _error(response: httpx.Response, status: int) -> dict:
    """Assert an OpenAI-style error body with all four fields and return its `error` object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def test_default_token_is_shown_once_kept_only_as_a_hash_and_rotatable(store) -> None:
    clients = Clients(store.settings)
    token = clients.default_token()
    assert token is not None and token.startswith("hearth-") and len(token) > 40
    assert clients.default_token() is None  # only its hash is kept, so it cannot be shown again
    rotated = clients.default_token(rotate=True)
    assert rotated is not None and rotated != token
    settings = str(store.db.execute("SELECT key, value FROM settings").fetchall())
    assert token not in settings and rotated not in settings  # no plaintext, even inside the encrypted store
    assert clients.get(DEFAULT_CLIENT).token_hash in settings


def test_a_legacy_plaintext_token_keeps_working_and_is_hashed(store) -> None:
    store.settings.set("api.token", "hearth-legacy-token")
    clients = Clients(store.settings)
    assert clients.default_token() == "hearth-legacy-token"  # printed this one last time
    assert store.settings.get("api.token") is None
    assert clients.default_token() is None


def test_missing_or_wrong_token_is_401(api_server) -> None:
    server = api_server()
    with _client(server, token=None) as client:
        response = client.get("/models")
        assert _error(response, 401)["code"] == "missing_api_key"
        assert response.headers["www-authenticate"] == "Bearer"
    with _client(server, token="hearth-wrong") as client:
        assert _error(client.get("/models"), 401)["code"] == "invalid_api_key"
        assert _error(client.post("/chat/completions", json={}), 401)["code"] == "invalid_api_key"
    with _client(server, token=server.token[:-1]) as client:
        assert _error(client.get("/models"), 401)["code"] == "invalid_api_key"
    with _client(server) as client:
        assert client.get("/models").status_code == 200


def test_rotated_token_takes_effect_on_a_running_server(api_server, store) -> None:
    server = api_server()
    old = server.token
    with _client(server, token=old) as client:
        assert client.get("/models").status_code == 200
    new = Clients(store.settings).rotate(DEFAULT_CLIENT)  # another connection, as `hearth api-token --rotate`
    with _client(server, token=old) as client:
        _error(client.get("/models"), 401)
    with _client(server, token=new) as client:
        assert client.get("/models").status_code == 200


def test_revocation_still_reaches_a_running_server_after_a_rekey(api_server, store) -> None:
    server = api_server()
    token = Clients(store.settings).add("editor", frozenset({"chat"}))
    with _client(server, token=token) as client:
        assert client.get("/models").status_code == 200
    store.rekey()  # replaces the database file under the server's own connection
    Clients(store.settings).revoke("editor")
    with _client(server, token=token) as client:
        _error(client.get("/models"), 401)
    with _client(server) as client:
        assert client.get("/models").status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost.evil.example:{port}",
        "127.0.0.1:1",
        "127.0.0.2:{port}",
        "",
    ],
)
def test_non_loopback_host_is_403_even_with_the_token(api_server, host: str) -> None:
    server = api_server()
    with _client(server) as client:
        response = client.get("/models", headers={"Host": host.format(port=server.port)})
        assert _error(response, 403)["code"] == "bad_host"


@pytest.mark.parametrize("host", ["localhost:{port}", "LOCALHOST:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_loopback_names_are_accepted(api_server, host: str) -> None:
    server = api_server()
    with _client(server) as client:
        assert client.get("/models", headers={"Host": host.format(port=server.port)}).status_code == 200


def test_host_parsing() -> None:
    assert host_allowed("localhost:8765", 8765) and host_allowed("[::1]:8765", 8765)
    assert host_allowed("localhost", 80) and not host_allowed("localhost", 8765)
    for bad in ("localhost:8766", "[::1]x:8765", "127.0.0.1:", "127.0.0.1:abc", "[::2]:8765", "0.0.0.0:8765"):
        assert not host_allowed(bad, 8765), bad


def test_server_refuses_to_bind_anything_but_loopback() -> None:
    assert check_bind_host("127.0.0.1") == "127.0.0.1" and check_bind_host("::1") == "::1"
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            check_bind_host(host)


def test_server_listens_on_loopback_only(api_server) -> None:
    server = api_server()
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError), socket.create_connection((outward, server.port), timeout=2):
        pass


def _outward_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it picks the outward interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_cors_is_closed_unless_an_origin_is_allowed(api_server) -> None:
    closed = api_server()
    with _client(closed, Origin="https://evil.example") as client:
        assert _error(client.get("/models"), 403)["code"] == "bad_origin"
        preflight = client.options("/chat/completions", headers={"Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers

    opened = api_server(allowed_origins=("http://localhost:3000",))
    with _client(opened, Origin="http://localhost:3000") as client:
        preflight = client.options(
            "/chat/completions",
            headers={
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
        response = client.get("/models")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    with _client(opened, Origin="https://evil.example") as client:
        _error(client.get("/models"), 403)


def test_malformed_and_mistyped_bodies(api_server) -> None:
    server = api_server()
    with _client(server) as client:
        broken = client.post(
            "/chat/completions",
            content=b'{"model": "hearth", "messages": [',
            headers={"Content-Type": "application/json"},
        )
        assert _error(broken, 400)["code"] == "invalid_json"
        typed = client.post("/chat/completions", json={"model": "hearth", "messages": "hello"})
        assert _error(typed, 422)["param"] == "messages"
        hot = {"model": "hearth", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}
        assert _error(client.post("/chat/completions", json=hot), 422)["param"] == "temperature"
        missing = client.post("/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert _error(missing, 422)["param"] == "model"
        zero = {"model": "hearth", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}
        assert _error(client.post("/chat/completions", json=zero), 422)["param"] == "max_tokens"
        last = {"model": "hearth", "messages": [{"role": "assistant", "content": "hi"}]}
        assert _error(client.post("/chat/completions", json=last), 400)["param"] == "messages"
        image = {"model": "hearth", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
        assert _error(client.post("/chat/completions", json=image), 400)["code"] == "unsupported_content"
        two = {"model": "hearth", "messages": [{"role": "user", "content": "hi"}], "n": 2}
        assert _error(client.post("/chat/completions", json=two), 400)["param"] == "n"
        tokens = client.post("/embeddings", json={"model": "all-minilm-l6-v2", "input": [[1, 2, 3]]})
        assert _error(tokens, 400)["param"] == "input"
        assert _error(client.get("/nothing-here"), 404)["code"] == "unknown_url"
        assert _error(client.get("/chat/completions"), 405)


def test_unknown_model_is_404(api_server) -> None:
    server = api_server()
    with _client(server) as client:
        chat = {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}
        assert _error(client.post("/chat/completions", json=chat), 404)["code"] == "model_not_found"
        assert _error(client.post("/embeddings", json={"model": "gpt-9", "input": "hi"}), 404)["param"] == "model"
        assert _error(client.get("/models/gpt-9"), 404)["code"] == "model_not_found"


def test_models_lists_the_alias_and_registered_models(api_server) -> None:
    server = api_server()
    with _client(server) as client:
        names = [m["id"] for m in client.get("/models").json()["data"]]
        assert names[0] == "hearth" and "smollm2-135m" in names and "all-minilm-l6-v2" in names
        assert client.get("/models/hearth").json()["id"] == "hearth"


def test_oversize_body_is_413_by_length_and_by_stream(api_server) -> None:
    server = api_server(max_body_bytes=4096)
    big = {"model": "hearth", "messages": [{"role": "user", "content": "x" * 5000}]}
    with _client(server) as client:
        assert _error(client.post("/chat/completions", json=big), 413)["code"] == "request_too_large"

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield json.dumps(big).encode()[:3000]
            yield json.dumps(big).encode()[3000:]

        streamed = client.post("/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
        assert _error(streamed, 413)["code"] == "request_too_large"
        # The server is still fine afterwards.
        assert client.get("/models").status_code == 200


def test_unknown_adapter_is_a_clear_error_and_off_answers(api_server, engine) -> None:
    server = api_server(engine=engine)
    with _client(server) as client:
        body = {"model": "hearth", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        error = _error(client.post("/chat/completions", json={**body, "hearth_adapter": "a1"}), 400)
        assert "no adapter 'a1'" in error["message"]
        off = client.post("/chat/completions", json={**body, "hearth_adapter": "off"})
        assert off.status_code == 200, off.text
        assert off.json()["choices"][0]["message"]["content"]


def test_error_messages_do_not_echo_request_content(api_server) -> None:
    server = api_server()
    secret = "my-bank-pin-4711"
    with _client(server) as client:
        for body in (
            {"model": "hearth", "messages": [{"role": "user", "content": "hi"}], "temperature": secret},
            {"model": "hearth", "messages": [{"role": secret, "content": "hi"}]},
        ):
            response = client.post("/chat/completions", json=body)
            assert response.status_code >= 400
            assert secret not in response.text


def test_a_registered_model_this_server_does_not_run_is_a_clear_400(api_server, bundled_model) -> None:
    from desktop.engine import models

    models.add(bundled_model, name="other-model")
    server = api_server()
    with _client(server) as client:
        assert "other-model" in [m["id"] for m in client.get("/models").json()["data"]]
        chat = {"model": "other-model", "messages": [{"role": "user", "content": "hi"}]}
        error = _error(client.post("/chat/completions", json=chat), 400)
        assert error["code"] == "model_not_loaded" and "--model other-model" in error["message"]


def test_a_crash_is_a_500_whose_log_never_quotes_the_message(api_server, caplog) -> None:
    canary = "-".join(["canary", "4711"])  # built at run time, so no source line in a traceback shows it

    def broken_engine():
        raise RuntimeError(f"{canary}: user text that must not reach the log")

    server = api_server(engine_getter=broken_engine)
    with caplog.at_level("ERROR"), _client(server) as client:
        body = {"model": "hearth", "messages": [{"role": "user", "content": "hi"}]}
        assert _error(client.post("/chat/completions", json=body), 500)["code"] == "internal_error"
        streamed = client.post("/chat/completions", json={**body, "stream": True})
        assert streamed.status_code == 200 and '"internal_error"' in streamed.text
        assert streamed.text.endswith("data: [DONE]\n\n")
        assert client.get("/models").status_code == 200
    assert "RuntimeError" in caplog.text and canary not in caplog.text
