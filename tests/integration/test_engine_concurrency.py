"""Two callers of one Engine: a borrowed adapter is one locked call, stopping is per call, saves are batched.

The window and the API share one engine (and, in the app, one engine executor). These tests call the real
bundled model from two threads directly, bypassing the executor, so they hold even for a caller that
forgets it: the lock covers the adapter swap, the generation and the swap back.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from desktop.engine import AdapterChoice, Engine, Message, SamplingParams
from desktop.engine.conversation import Conversation

_spec = importlib.util.spec_from_file_location("adapters", Path(__file__).parents[1] / "fixtures" / "adapters.py")
assert _spec is not None and _spec.loader is not None
adapters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(adapters)

SYSTEM = Message("system", "You are a helpful assistant.")
COUNT = [SYSTEM, Message("user", "Count from 1 to 100, separated by commas.")]
PARAMS = SamplingParams(temperature=0, max_tokens=24)


def test_a_borrowed_adapter_serves_one_reply_and_no_other(engine: Engine) -> None:
    borrowed = AdapterChoice("borrowed", adapters.adapter_gguf(3))
    assert engine.adapter_id is None
    seen: dict[str, list[str | None]] = {"api": [], "window": []}
    order: list[str] = []
    api_started = threading.Event()

    def api() -> None:
        for event in engine.chat(COUNT, PARAMS, adapter=borrowed):
            seen["api"].append(engine.adapter_id)
            api_started.set()
            order.append(f"api-{event.kind}")

    def window() -> None:
        api_started.wait(60)
        for event in engine.chat(COUNT, PARAMS):
            seen["window"].append(engine.adapter_id)
            order.append(f"window-{event.kind}")

    threads = [threading.Thread(target=api), threading.Thread(target=window)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert seen["api"] and set(seen["api"]) == {"borrowed"}
    assert seen["window"] and set(seen["window"]) == {None}, "the window's reply ran on the API's adapter"
    assert order.index("api-done") < order.index(next(e for e in order if e.startswith("window"))), order
    assert engine.adapter_id is None


def test_a_corrupt_borrowed_adapter_is_an_error_event_and_changes_nothing(engine: Engine) -> None:
    events = list(engine.chat(COUNT, PARAMS, adapter=AdapterChoice("bad", b"GGUF but not really")))
    assert [e.kind for e in events] == ["error"]
    assert engine.adapter_id is None


def test_one_callers_stop_does_not_stop_another(engine: Engine) -> None:
    mine, theirs = threading.Event(), threading.Event()
    theirs.set()  # another reply's Esc: only that reply's should_stop says so
    events = list(engine.chat(COUNT, PARAMS, should_stop=mine.is_set))
    assert events[-1].stats is not None and events[-1].stats.finish_reason == "length"


def test_a_reply_is_saved_in_batches_and_whole(engine: Engine, store: Any, monkeypatch: Any) -> None:
    from desktop.engine import conversation as module

    monkeypatch.setattr(module, "SAVE_BATCH_S", float("inf"))  # one batch however slow this machine decodes
    appends: list[str] = []
    real = store.chats.append_to_message
    monkeypatch.setattr(store.chats, "append_to_message", lambda mid, delta: (appends.append(delta), real(mid, delta)))
    conversation = Conversation(engine, store)
    shown = [e.text for e in conversation.stream("Count from 1 to 100, separated by commas.", PARAMS) if e.text]
    saved = store.chats.messages(conversation.conversation_id)[-1]
    assert saved["content"] == "".join(shown) and saved["status"] == "complete"
    assert len(shown) > 2 and len(appends) == 1, "the reply was not saved as one batch"


def test_grounding_uses_the_injected_retrieve(engine: Engine) -> None:
    """The window and the API inject retrieval instead of subclassing: whatever `retrieve` finds grounds the reply."""
    from storage.search import Hit

    asked: list[str] = []
    passage = Hit(
        chunk_id=1,
        document_id=1,
        source="/notes/boat.txt",
        title="boat.txt",
        location="lines 1-1",
        page=None,
        heading="",
        text="The boat called Zanzibar sails on Tuesdays.",
        score=1.0,
        similarity=0.9,
        keyword=True,
        terms_matched=1.0,
    )

    def retrieve(question: str) -> list[Hit]:
        asked.append(question)
        return [passage]

    conversation = Conversation(engine, save=False, use_docs=True, retrieve=retrieve)
    reply = conversation.ask("When does the boat sail?", SamplingParams(temperature=0, max_tokens=8))
    assert asked == ["When does the boat sail?"]
    assert [s["source"] for s in reply.sources] == ["/notes/boat.txt"]
