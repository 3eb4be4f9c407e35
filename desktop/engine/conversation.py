"""A conversation: the engine's stream plus persistence as it happens, and optional document grounding.

The user's message is saved before generation starts; the assistant's message is created with the first
piece of text, then extended once per batch (`SAVE_BATCH_S`) rather than once per token: in the window and
the API the store lives on another thread, and one round trip per token made a streaming reply wait on
every other store task. Text is yielded only after it is saved, so a crash never loses text the user saw.
Front ends (CLI, window, API) all talk through this class, so they save and ground answers the same way.

Grounding is injected: `retrieve(question)` returns the passages (`storage.search.Hit`s); by default the
store's own `search()`. Stopping is the caller's `should_stop`, and `adapter` picks the personal adapter
for one reply: both go to the one locked `Engine.chat` call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desktop.engine.llama import AdapterChoice, ChatEvent, Engine, GenerationStats, Message, SamplingParams

if TYPE_CHECKING:
    from storage.search import Hit
    from storage.store import Store

Retrieve = Callable[[str], Sequence["Hit"]]

# No persona of Hearth's own: without one the model gets the framing measured for it (engine/framing.py).
# Small models are sensitive to the system message, and a hand-picked one ("You are a helpful assistant.")
# made SmolLM2-135M's first answer token a coin flip between CPUs. Users set their own persona.
DEFAULT_SYSTEM_PROMPT = ""
# Share of the context window that retrieved passages may take; the rest is the chat and the answer.
GROUNDING_SHARE = 0.5
RETRIEVE_K = 8  # passages asked for; grounding keeps the relevant ones that fit GROUNDING_SHARE
# A reply's text is saved (then shown) in batches this long: at ~30-100 tokens/s, a few tokens per write.
SAVE_BATCH_S = 0.05


@dataclass
class Reply:
    answer: str = ""
    conversation_id: int | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    stats: GenerationStats | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"answer": self.answer, "conversation_id": self.conversation_id}
        data["sources"] = self.sources
        if self.stats is not None:
            data["usage"] = {
                "prompt_tokens": self.stats.prompt_tokens,
                "completion_tokens": self.stats.completion_tokens,
                "finish_reason": self.stats.finish_reason,
            }
        if self.error is not None:
            data["error"] = self.error
        return data


class Conversation:
    def __init__(
        self,
        engine: Engine,
        store: Store | None = None,
        system_prompt: str | None = None,
        save: bool = True,
        use_docs: bool = False,
        conversation_id: int | None = None,
        retrieve: Retrieve | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.save = save and store is not None
        self.use_docs = use_docs
        self.retrieve = retrieve  # None: the store's search (grounding needs one or the other)
        self.system_prompt = system_prompt or DEFAULT_SYSTEM_PROMPT  # "" : the model's measured framing
        self.conversation_id = conversation_id
        self.history: list[Message] = []
        self.last_sources: list[dict[str, Any]] = []
        if conversation_id is not None and store is not None:
            self._load(conversation_id)

    def _load(self, conversation_id: int) -> None:
        assert self.store is not None
        conv = self.store.chats.get(conversation_id)
        self.system_prompt = conv.get("system_prompt") or self.system_prompt
        self.history = [
            Message(m["role"], m["content"])
            for m in self.store.chats.messages(conversation_id)
            if m["role"] in ("user", "assistant")
        ]

    def stream(
        self,
        text: str,
        params: SamplingParams | None = None,
        should_stop: Callable[[], bool] | None = None,
        adapter: AdapterChoice | None = None,
    ) -> Generator[ChatEvent, None, None]:
        """Send text; yield the reply's events, each text event after its batch was saved."""
        system = self.system_prompt or self.engine.default_system_prompt
        self.last_sources = []
        if self.use_docs:
            system, self.last_sources = self._grounded_system_prompt(text)
        user = Message("user", text)
        messages = [*([] if system is None else [Message("system", system)]), *self.history, user]
        self._save_new("user", text)
        self.history.append(user)
        assistant_id: int | None = None
        parts: list[str] = []
        held: list[ChatEvent] = []  # text events not saved (so not shown) yet
        flushed = time.monotonic()
        status = "interrupted"  # what the saved reply says if the stream is abandoned midway
        try:
            for event in self.engine.chat(messages, params, should_stop=should_stop, adapter=adapter):
                if event.kind == "text":
                    parts.append(event.text)
                    if assistant_id is None:  # the first piece at once: time to first token is what users feel
                        assistant_id = self._save_new("assistant", event.text, "streaming")
                        flushed = time.monotonic()
                        yield event
                        continue
                    held.append(event)
                    if time.monotonic() - flushed < SAVE_BATCH_S:
                        continue
                elif event.kind == "done":
                    assert event.stats is not None
                    status = "interrupted" if event.stats.finish_reason == "cancelled" else "complete"
                else:
                    status = "error"
                batch, held = held, []
                self._append(assistant_id, batch)
                flushed = time.monotonic()
                yield from batch
                if event.kind != "text":
                    yield event
        finally:
            self._append(assistant_id, held)  # abandoned midway: keep what was generated, seen or not
            if assistant_id:
                assert self.store is not None
                self.store.chats.finish_message(assistant_id, status)
            self.history.append(Message("assistant", "".join(parts)))

    def _append(self, assistant_id: int | None, events: list[ChatEvent]) -> None:
        if assistant_id and events:
            assert self.store is not None
            self.store.chats.append_to_message(assistant_id, "".join(e.text for e in events))

    def _save_new(self, role: str, text: str, status: str = "complete") -> int:
        """Save a message (creating the conversation first); 0 when this conversation is not saved."""
        if not self.save:
            return 0
        assert self.store is not None
        if self.conversation_id is None:
            title = _title(text)
            self.conversation_id = self.store.chats.create(title=title, system_prompt=self.system_prompt)
        return self.store.chats.add_message(self.conversation_id, role, text, status=status)

    def ask(
        self,
        text: str,
        params: SamplingParams | None = None,
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Reply:
        """The whole reply; the stream is closed even when on_text raises (Ctrl-C in the CLI)."""
        reply = Reply()
        parts: list[str] = []
        with contextlib.closing(self.stream(text, params, should_stop=should_stop)) as events:
            for event in events:
                if event.kind == "text":
                    parts.append(event.text)
                    if on_text is not None:
                        on_text(event.text)
                elif event.kind == "error":
                    reply.error = event.text
                else:
                    reply.stats = event.stats
        reply.answer = "".join(parts)
        reply.conversation_id = self.conversation_id
        reply.sources = self.last_sources
        return reply

    def _grounded_system_prompt(self, question: str) -> tuple[str, list[dict[str, Any]]]:
        from desktop.engine.grounding import build_context

        if self.retrieve is not None:
            hits = self.retrieve(question)
        else:
            assert self.store is not None, "grounding needs the store or a retrieve function"
            hits = self.store.search(question, k=RETRIEVE_K)
        budget = int(self.engine.n_ctx * GROUNDING_SHARE)
        block, sources = build_context(hits, budget, self.engine.count_tokens)
        persona = self.system_prompt or self.engine.default_system_prompt
        return f"{persona}\n\n{block}" if persona else block, sources


def _title(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
