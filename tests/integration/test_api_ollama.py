"""The Ollama-compatible endpoints over real HTTP: the official `ollama` client, then every endpoint's JSON."""

from __future__ import annotations

import json
import math

import httpx
import ollama
import pytest

from storage.clients import Clients

QUESTION = [{"role": "user", "content": "Name three colours."}]
GREEDY = {"temperature": 0, "num_predict": 12, "seed": 1}
DETAILS = {"parent_model", "format", "family", "families", "parameter_size", "quantization_level"}


def _client(server, token: str | None = "server") -> ollama.Client:
    token = server.token if token == "server" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ollama.Client(host=server.root_url, headers=headers, timeout=120)


def _http(server, token: str | None = "server") -> httpx.Client:
    token = server.token if token == "server" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.root_url, headers=headers, timeout=120)


def _lines(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line]


# --- the official client --------------------------------------------------------------------------------


def test_the_ollama_client_lists_chats_streams_and_embeds(api_server, engine) -> None:
    server = api_server(engine=engine)
    client = _client(server)
    names = [m.model for m in client.list().models]
    assert names[:2] == ["hearth:latest", "smollm2-135m:latest"] and "all-minilm:latest" in names
    assert "hearth:personal" not in names  # no personal adapter is active in this store
    assert client.list().models[0].details.quantization_level == "Q4_1"

    whole = client.chat(model="hearth", messages=QUESTION, options=GREEDY)
    assert whole.done and whole.message.role == "assistant" and whole.message.content
    assert 0 < whole.eval_count <= 12 and whole.prompt_eval_count > 0
    pieces = list(client.chat(model="hearth", messages=QUESTION, options=GREEDY, stream=True))
    assert [p.done for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert "".join(p.message.content for p in pieces) == whole.message.content  # same greedy answer
    assert pieces[-1].eval_count == whole.eval_count

    generated = client.generate(model="smollm2-135m", prompt="Name three colours.", options=GREEDY)
    assert generated.done and generated.response

    vectors = client.embed(model="all-minilm", input=["a red apple", "a green pear"]).embeddings
    assert len(vectors) == 2 and all(len(v) == 384 for v in vectors)
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-3)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}) as openai:
        same = openai.post("/embeddings", json={"model": "all-minilm-l6-v2", "input": "a red apple"}).json()
    assert max(abs(a - b) for a, b in zip(same["data"][0]["embedding"], vectors[0], strict=True)) < 1e-5


def test_the_ollama_answer_is_the_openai_endpoints_answer(api_server, engine) -> None:
    """Both APIs run one generation path: the same greedy request gives the same text."""
    server = api_server(engine=engine)
    ours = _client(server).chat(model="hearth", messages=QUESTION, options=GREEDY).message.content
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}) as openai:
        body = {"model": "hearth", "messages": QUESTION, "temperature": 0, "max_tokens": 12, "seed": 1}
        theirs = openai.post("/chat/completions", json=body, timeout=120).json()["choices"][0]["message"]["content"]
    assert ours == theirs


def test_options_num_predict_and_stop_are_applied(api_server, engine) -> None:
    server = api_server(engine=engine)
    client = _client(server)
    short = client.chat(model="hearth", messages=QUESTION, options={**GREEDY, "num_predict": 3})
    assert short.eval_count == 3 and short.done_reason == "length"
    full = client.chat(model="hearth", messages=QUESTION, options={**GREEDY, "num_predict": 24}).message.content
    words = full.split()
    assert len(words) >= 3, full
    cut = client.chat(model="hearth", messages=QUESTION, options={**GREEDY, "num_predict": 24, "stop": [words[2]]})
    assert cut.done_reason == "stop" and words[2] not in cut.message.content
    assert full.startswith(cut.message.content.rstrip())


def test_ollama_errors_reach_the_client_as_response_errors(api_server) -> None:
    server = api_server()
    with pytest.raises(ollama.ResponseError) as unknown:
        _client(server).chat(model="llama3", messages=QUESTION)
    assert unknown.value.status_code == 404 and "llama3" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as no_token:
        _client(server, token=None).list()
    assert no_token.value.status_code == 401 and "api-token" in no_token.value.error


# --- raw JSON shapes -------------------------------------------------------------------------------------


def test_every_listing_endpoint_has_ollamas_shape(api_server) -> None:
    server = api_server()
    with _http(server) as http:
        assert set(http.get("/api/version").json()) == {"version"}
        tags = http.get("/api/tags").json()["models"]
        for entry in tags:
            assert set(entry) == {"name", "model", "modified_at", "size", "digest", "details"}
            assert set(entry["details"]) == DETAILS and len(entry["digest"]) == 64 and entry["size"] > 0
            assert entry["modified_at"].endswith("Z")
        running = http.get("/api/ps").json()["models"]
        assert running[0]["name"] == "hearth:latest" and running[0]["context_length"] > 0
        assert {"expires_at", "size_vram"} <= set(running[0])
        show = http.post("/api/show", json={"model": "hearth"}).json()
        assert {"modelfile", "parameters", "template", "details", "model_info", "capabilities"} <= set(show)
        assert show["capabilities"] == ["completion"] and show["model_info"]["general.architecture"] == "llama"
        assert http.post("/api/show", json={"name": "all-minilm"}).json()["capabilities"] == ["embedding"]
        assert http.post("/api/show", json={"model": "nope"}).status_code == 404


def test_chat_and_generate_stream_ndjson_and_answer_whole(api_server, engine) -> None:
    server = api_server(engine=engine)
    with _http(server) as http:
        lines = _lines(http.post("/api/chat", json={"model": "hearth", "messages": QUESTION, "options": GREEDY}))
        assert all(set(line) == {"model", "created_at", "message", "done"} for line in lines[:-1])
        final = lines[-1]
        assert final["done"] is True and final["done_reason"] in ("stop", "length")
        assert {"total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration"} <= set(final)
        whole = http.post(
            "/api/chat", json={"model": "hearth", "messages": QUESTION, "options": GREEDY, "stream": False}
        ).json()
        assert whole["message"]["content"] == "".join(line["message"]["content"] for line in lines)
        generated = _lines(http.post("/api/generate", json={"model": "hearth", "prompt": "Hi", "options": GREEDY}))
        assert all("response" in line for line in generated) and generated[-1]["done"] is True
        warm = http.post("/api/generate", json={"model": "hearth"}).json()  # an empty prompt just loads
        assert warm["done"] is True and warm["done_reason"] == "load" and warm["response"] == ""


def test_embed_and_legacy_embeddings_shapes(api_server) -> None:
    server = api_server()
    with _http(server) as http:
        embed = http.post("/api/embed", json={"model": "all-minilm", "input": "hello"}).json()
        assert set(embed) == {"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"}
        assert len(embed["embeddings"]) == 1 and len(embed["embeddings"][0]) == 384
        legacy = http.post("/api/embeddings", json={"model": "all-minilm:latest", "prompt": "hello"}).json()
        assert set(legacy) == {"embedding"}
        assert max(abs(a - b) for a, b in zip(legacy["embedding"], embed["embeddings"][0], strict=True)) < 1e-6


def test_bad_requests_get_ollama_errors(api_server) -> None:
    server = api_server()
    with _http(server) as http:
        for path, body, status in [
            ("/api/chat", {"model": "hearth", "messages": QUESTION, "options": {"top_p": 5}}, 400),
            ("/api/chat", {"model": "hearth", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, 400),
            ("/api/chat", {"model": "all-minilm", "messages": QUESTION}, 400),
            ("/api/chat", {"messages": QUESTION}, 422),
            ("/api/embed", {"model": "hearth:personal", "input": "x"}, 404),
            ("/api/embed", {"model": "all-minilm", "input": []}, 400),
        ]:
            response = http.post(path, json=body)
            assert response.status_code == status, (body, response.text)
            assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)


# --- scopes, tokenless opt-in, access log ----------------------------------------------------------------


def test_scopes_are_enforced_per_endpoint(api_server, store) -> None:
    server = api_server()
    embedder = Clients(store.settings).add("embedder", frozenset({"embeddings"}))
    with _http(server, token=embedder) as http:
        assert http.post("/api/embed", json={"model": "all-minilm", "input": "x"}).status_code == 200
        refused = http.post("/api/chat", json={"model": "hearth", "messages": QUESTION})
        assert refused.status_code == 403 and "'chat' scope" in refused.json()["error"]
        assert http.post("/v1/chat/completions", json={"model": "hearth", "messages": QUESTION}).status_code == 403
    chatter = Clients(store.settings).add("chatter", frozenset({"chat"}))
    with _http(server, token=chatter) as http:
        assert http.post("/api/embed", json={"model": "all-minilm", "input": "x"}).status_code == 403
        grounded = {"model": "hearth", "messages": QUESTION, "hearth_docs": True}
        assert http.post("/v1/chat/completions", json=grounded).json()["error"]["param"] == "hearth_docs"


def test_tokenless_ollama_is_off_by_default_and_base_model_only_when_on(api_server, store, engine) -> None:
    server = api_server(engine=engine)
    with _http(server, token=None) as http:
        assert http.get("/api/tags").status_code == 401
        Clients(store.settings).set_ollama_tokenless(True)  # takes effect on the running server
        names = [m["name"] for m in http.get("/api/tags").json()["models"]]
        assert "hearth:latest" in names and "hearth:personal" not in names
        answer = http.post(
            "/api/chat", json={"model": "hearth", "messages": QUESTION, "options": GREEDY, "stream": False}
        )
        assert answer.status_code == 200 and answer.json()["message"]["content"]
        assert http.post("/api/embed", json={"model": "all-minilm", "input": "x"}).status_code == 200
        assert http.post("/api/chat", json={"model": "hearth:personal", "messages": QUESTION}).status_code == 404
        # Never documents, chats or the OpenAI API without a token.
        assert http.get("/v1/models").status_code == 401
        assert http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).status_code == 401
        Clients(store.settings).set_ollama_tokenless(False)
        assert http.get("/api/tags").status_code == 401
        assert http.get("/api/tags", headers={"Host": "evil.example"}).status_code == 403


def test_the_access_log_records_client_endpoint_and_passages_never_content(api_server, store) -> None:
    server = api_server()
    secret = "my-bank-pin-4711"
    with _http(server) as http:
        assert http.post("/api/embed", json={"model": "all-minilm", "input": secret}).status_code == 200
        assert http.get("/api/tags").status_code == 200
    server.stop()  # the log is written off the request path; stopping flushes it
    entries = store.access_log.recent(10)
    assert [(e.client, e.endpoint, e.passages) for e in entries[:2]] == [
        ("default", "GET /api/tags", 0),
        ("default", "POST /api/embed", 0),
    ]
    rows = store.db.execute("SELECT * FROM api_access").fetchall()
    assert secret not in str(rows) and server.token not in str(rows)


# --- the personal adapter as its own model name ------------------------------------------------------------


def _random_adapter(store) -> str:
    """A real GGUF LoRA adapter on the bundled model's v projections (random, strong enough to change the
    greedy answer), registered and made active the way a finished personalization run does."""
    import numpy as np

    from personalize import base, export_gguf
    from personalize.registry import AdapterRecord, Registry, new_id

    info = base.inspect(base.bundled_gguf())
    rng = np.random.default_rng(0)
    n_embd, head_dim = 576, 64  # SmolLM2-135M: 9 heads, 3 KV heads of 64
    state = {}
    for layer in range(info.n_layer):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.v_proj"
        state[f"{prefix}.lora_A.weight"] = rng.standard_normal((8, n_embd)).astype(np.float32) * 0.5
        state[f"{prefix}.lora_B.weight"] = rng.standard_normal((info.n_head_kv * head_dim, 8)).astype(np.float32)
    gguf = export_gguf.to_gguf(state, 16.0, info)
    registry = Registry(store)
    record = AdapterRecord(new_id(), "2026-01-01T00:00:00Z", info.sha256, 10.0, 9.0, 1000, 10)
    registry.add(gguf, {}, record)
    registry.set_active(record.id)
    return record.id


def test_hearth_personal_is_the_active_adapter_and_hearth_stays_the_base(api_server, store, engine) -> None:
    server = api_server(engine=engine)
    client = _client(server)
    base_answer = client.chat(model="hearth", messages=QUESTION, options=GREEDY).message.content
    _random_adapter(store)
    try:
        assert "hearth:personal" in [m.model for m in client.list().models]
        assert client.show("hearth:personal").capabilities == ["completion"]
        personal = client.chat(model="hearth:personal", messages=QUESTION, options=GREEDY).message.content
        assert personal != base_answer
        assert client.chat(model="hearth", messages=QUESTION, options=GREEDY).message.content == base_answer
        Clients(store.settings).set_ollama_tokenless(True)
        with _http(server, token=None) as tokenless:
            names = [m["name"] for m in tokenless.get("/api/tags").json()["models"]]
            assert "hearth:personal" not in names
            refused = tokenless.post("/api/chat", json={"model": "hearth:personal", "messages": QUESTION})
            assert refused.status_code == 404
    finally:
        from personalize.registry import Registry

        Registry(store).set_active(None)
        engine.use_adapter(None)  # the session's shared engine goes back to the base model
