"""One model, many clients: the bounded queue, 429s, cancellation on disconnect, and opt-in history."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from desktop.api.server import ApiServer

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
IDLE_WAIT_S = 60  # how long a test waits for the worker to go idle (a wait, not a timing assertion)


def _post(server: ApiServer, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=120)


def _wait_idle(server: ApiServer) -> None:
    deadline = time.monotonic() + IDLE_WAIT_S
    while server.state.chat_worker.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.state.chat_worker.in_flight == 0


def _ten_clients(
    server: ApiServer, on_response: Callable[[int], None] | None = None
) -> tuple[list[threading.Thread], list[httpx.Response]]:
    """Ten clients that post at the same moment; returns (threads, responses as they arrive)."""
    body = {"model": "hearth", "messages": QUESTION, "temperature": 0, "max_tokens": 8}
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def client() -> None:
        start.wait()
        response = _post(server, body)
        with lock:
            responses.append(response)
            if on_response is not None:
                on_response(len(responses))

    threads = [threading.Thread(target=client) for _ in range(10)]
    for t in threads:
        t.start()
    return threads, responses


def test_a_full_queue_answers_429_with_retry_after_then_serves_the_rest(api_server, engine) -> None:
    """The model is held busy (its getter waits on a gate), so exactly 1 running + 2 waiting get answers."""
    gate = threading.Event()
    seven_refused = threading.Event()

    def gated_engine():
        gate.wait(IDLE_WAIT_S)
        return engine

    server = api_server(engine_getter=gated_engine, queue_capacity=2)
    threads, responses = _ten_clients(server, lambda n: seven_refused.set() if n == 7 else None)
    assert seven_refused.wait(IDLE_WAIT_S)
    gate.set()
    for t in threads:
        t.join()
    assert Counter(r.status_code for r in responses) == {200: 3, 429: 7}
    for refused in (r for r in responses if r.status_code == 429):
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"
    for answered in (r for r in responses if r.status_code == 200):
        assert answered.json()["choices"][0]["message"]["content"]
    assert _post(server, {"model": "hearth", "messages": QUESTION, "max_tokens": 4}).status_code == 200


def test_ten_concurrent_clients_get_answers_or_429_and_the_server_stays_up(api_server, engine, plain_answer) -> None:  # type: ignore[no-untyped-def]
    server = api_server(engine=engine, queue_capacity=2)
    threads, responses = _ten_clients(server)
    for t in threads:
        t.join()
    assert len(responses) == 10
    assert {r.status_code for r in responses} <= {200, 429}
    assert any(r.status_code == 200 for r in responses)
    _wait_idle(server)
    engine.reset_cache()  # then the answer is exactly plain llama.cpp's: the queue left no trace in the engine
    again = _post(server, {"model": "hearth", "messages": QUESTION, "temperature": 0, "max_tokens": 16})
    assert again.status_code == 200
    expected = plain_answer(QUESTION[0]["content"], 16, engine.n_ctx, engine.threads)
    assert expected.strip() and again.json()["choices"][0]["message"]["content"] == expected


def test_disconnect_mid_stream_cancels_the_generation(api_server, engine, store) -> None:
    """The exchange is saved (hearth_save), so the stored reply shows the generation really stopped."""
    server = api_server(engine=engine, queue_capacity=0)
    body = {
        "model": "hearth",
        "messages": [{"role": "user", "content": "Write a very long story about a dragon and a baker."}],
        "max_tokens": 1000,
        "temperature": 0.8,
        "seed": 1,
        "stream": True,
        "hearth_save": True,
    }
    headers = {"Authorization": f"Bearer {server.token}"}
    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", f"{server.base_url}/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: {")
            if seen >= 5:
                break  # leaving the block closes the connection mid-stream
    _wait_idle(server)
    [conversation] = store.chats.list()
    user, reply = store.chats.messages(conversation["id"])
    assert user["role"] == "user" and reply["role"] == "assistant"
    assert reply["status"] == "interrupted"
    assert engine.count_tokens(reply["content"]) < 900


def test_disconnect_while_waiting_for_a_non_streamed_answer_cancels_it(api_server, engine, store) -> None:
    server = api_server(engine=engine)
    body = {
        "model": "hearth",
        "messages": [{"role": "user", "content": "Write a very long story about a dragon and a baker."}],
        "max_tokens": 1000,
        "temperature": 0.8,
        "seed": 1,
        "hearth_save": True,
    }
    headers = {"Authorization": f"Bearer {server.token}"}
    url = f"{server.base_url}/chat/completions"
    # The client gives up after a few seconds of waiting (a read timeout closes the connection).
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, headers=headers, timeout=httpx.Timeout(60, read=5))
    _wait_idle(server)
    [conversation] = store.chats.list()
    reply = store.chats.messages(conversation["id"])[-1]
    assert reply["role"] == "assistant" and reply["status"] == "interrupted"


def test_api_chats_are_saved_only_when_asked(api_server, engine, store) -> None:
    server = api_server(engine=engine)
    body = {"model": "hearth", "messages": QUESTION, "temperature": 0, "max_tokens": 24}
    assert _post(server, body).status_code == 200
    assert store.chats.list() == []
    saved = _post(server, {**body, "hearth_save": True})
    assert saved.status_code == 200
    [conversation] = store.chats.list()
    messages = store.chats.messages(conversation["id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == saved.json()["choices"][0]["message"]["content"]
    assert messages[1]["status"] == "complete"


@pytest.mark.parametrize("stream", [False, True])
def test_stopping_the_server_mid_generation_does_not_hang(api_server, engine, stream: bool) -> None:
    server = api_server(engine=engine)
    body = {"model": "hearth", "messages": QUESTION, "max_tokens": 1000, "temperature": 1.0, "stream": stream}
    result: list[httpx.Response | Exception] = []

    def client() -> None:
        try:
            result.append(_post(server, body))
        except httpx.HTTPError as exc:
            result.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + IDLE_WAIT_S
    while not server.state.chat_worker.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop()
    thread.join(IDLE_WAIT_S)
    assert not thread.is_alive() and not server.running
