"""The window hosting the API: its replies and the API's share one engine executor and never cut each other off.

Real window, real bundled model, the real server on 127.0.0.1 called with the official `openai` and `ollama`
clients. Esc in the window stops the window's reply only; an API request with `hearth_adapter` runs on its
adapter alone, and the window's next reply is back on the user's active adapter (the base model here). The
other way round, an API client that goes away mid-answer stops its own request only: the window's reply
queued behind it on the engine executor still runs to its end.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import ollama
import openai

ANSWER_TIMEOUT_MS = 120_000
_spec = importlib.util.spec_from_file_location("adapters", Path(__file__).parents[1] / "fixtures" / "adapters.py")
assert _spec is not None and _spec.loader is not None
adapters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(adapters)

COUNT = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]


def test_window_reply_and_hosted_api_request_run_without_cutting_each_other_off(
    qtbot: Any, app: Any, store_call: Any
) -> None:
    adapter = store_call(app.session, lambda s: adapters.make_adapter(s, 2))
    with qtbot.waitSignal(app.session.api.api_did_change, timeout=60_000) as started:
        app.session.api.set(True)
    api = started.args[0]
    assert api["running"], api
    client = openai.OpenAI(base_url=api["url"], api_key=api["token"], max_retries=0, timeout=300)
    streaming = threading.Event()
    result: dict[str, Any] = {}

    def request() -> None:
        pieces, finish = [], None
        try:
            for chunk in client.chat.completions.create(
                model="hearth",
                messages=COUNT,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=24,
                stream=True,
                extra_body={"hearth_adapter": adapter},
            ):
                for choice in chunk.choices:
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        streaming.set()
                    finish = choice.finish_reason or finish
        except Exception as exc:  # reported by the assertions below, not lost in the thread
            result["error"] = repr(exc)
        result["text"], result["finish"] = "".join(pieces), finish
        streaming.set()

    app.session.chats.max_tokens = 400
    with qtbot.waitSignal(app.session.chats.generation_did_stream, timeout=ANSWER_TIMEOUT_MS):
        assert app.session.chats.send("Write a very long story about a lighthouse keeper.")
    thread = threading.Thread(target=request)
    thread.start()  # queued behind the window's reply on the engine executor
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as stopped:
        app.session.stop()  # what Esc calls
    assert stopped.args[0]["status"] == "interrupted"

    qtbot.waitUntil(streaming.is_set, timeout=ANSWER_TIMEOUT_MS)
    app.session.stop()  # Esc while the API request streams: not the window's reply, so nothing to stop
    app.session.chats.max_tokens = 8
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as window_reply:
        assert app.session.chats.send("Say hello.")  # queued behind the API request, runs after it
    thread.join(timeout=ANSWER_TIMEOUT_MS / 1000)
    assert "error" not in result, result
    assert result["finish"] == "length" and result["text"], result  # not cut off by either Esc
    assert window_reply.args[0]["status"] == "complete", window_reply.args[0]
    assert app.session.engine_worker.call(lambda: app.services.engine().adapter_id) is None

    # Vice versa, through Ollama's API: its client leaves mid-answer; the window's reply behind it is whole.
    chatty = ollama.Client(host=api["url"].removesuffix("/v1"), headers={"Authorization": f"Bearer {api['token']}"})
    pieces = chatty.chat(model="hearth", messages=COUNT, stream=True, options={"num_predict": 400, "temperature": 0})
    assert next(iter(pieces)).message.content is not None  # it is streaming on the engine executor
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as after_api:
        assert app.session.chats.send("Say goodbye.")  # queued behind the Ollama request
        pieces.close()  # the client goes away: the server cancels that request, and only that one
    assert after_api.args[0]["status"] == "complete", after_api.args[0]
    with qtbot.waitSignal(app.session.api.api_did_change, timeout=60_000):
        app.session.api.set(False)
