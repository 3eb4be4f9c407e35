"""The headless chat engine: one llama.cpp model, one streaming contract for every front end.

`Engine.chat(messages)` yields `ChatEvent`s (text pieces, then one `done` or `error`). The CLI prints them,
the GUI worker batches them into signals, the API wraps them as server-sent events.

Three things make it more than a `Llama` call:
- the prompt is rendered with the chat template from the GGUF's own metadata, then fitted to `n_ctx` by
  `fit_to_context` (system prompt and newest turns kept, so a long chat never raises);
- prompts are passed as tokens, so llama-cpp-python's prefix match reuses the KV cache of the previous turn
  and a follow-up only evaluates the new message;
- generation asks the caller's `should_stop` between tokens, so Stop takes effect within one token and
  stops only that caller's reply (there is no engine-wide cancel: Esc in the window must not cut off an
  API request);
- `chat(..., adapter=AdapterChoice(...))` serves one reply with another personal adapter and puts the
  active one back, all under one hold of the lock, so no other reply can run on the borrowed adapter.

The llama context is not thread-safe: every use holds `self._lock` (the window and the API submit to the
one engine executor, `desktop.engine.executor`; the lock makes a mistake there a wait, not a crash).

Past ~400 lines on purpose: rendering, fitting, generating and swapping adapters all act on that one llama
context under that one lock; split over modules, the lock's reach would no longer be visible in one file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from desktop.engine.model_fit import DEFAULT_N_CTX, check_fits
from desktop.engine.models import check_chat_model
from storage.errors import KnownError
from storage.machine import physical_cores

if TYPE_CHECKING:
    from llama_cpp import Llama

    from personalize.live import LiveAdapter
    from storage.store import Store

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
DEFAULT_MAX_TOKENS = 512
# Trimming drops old turns down to this share of the prompt budget, not just under it: the kept prefix then
# stays stable for several turns, so the KV cache keeps being reused instead of re-evaluated every turn.
TRIM_TARGET = 0.75


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    reused_tokens: int  # prompt tokens served from the KV cache of the previous turn
    completion_tokens: int
    dropped_messages: int  # old turns left out to fit n_ctx
    time_to_first_token_s: float
    decode_tokens_per_s: float
    finish_reason: Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ChatEvent:
    kind: Literal["text", "done", "error"]
    text: str = ""
    stats: GenerationStats | None = None


@dataclass(frozen=True)
class AdapterChoice:
    """The personal adapter one `Engine.chat` call runs with: `id` None is the base model."""

    id: str | None
    data: bytes | None = None  # the adapter's GGUF bytes (from personalize.registry), required with an id


@dataclass
class SamplingParams:
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float | None = None  # None: the model's measured default (framing.py); 0 means greedy
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


class Engine:
    """A loaded chat model. Construct with `Engine.load(path)`; close with `close()`."""

    def __init__(self, llama: Llama, path: Path, n_ctx: int, threads: int) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        self.path = path
        self.n_ctx = n_ctx
        self.threads = threads
        self._lock = threading.RLock()
        self._adapter: LiveAdapter | None = None
        self._recorded_speed = 0.0
        meta = llama.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise _no_chat_template(path)
        eos = self._token_text(int(meta.get("tokenizer.ggml.eos_token_id", llama.token_eos())))
        bos = self._token_text(int(meta.get("tokenizer.ggml.bos_token_id", llama.token_bos())))
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._stop_strings = [eos] if eos else []

    @classmethod
    def load(cls, path: Path, n_ctx: int = DEFAULT_N_CTX, threads: int | None = None) -> Engine:
        info = check_chat_model(path)
        if not info.chat_template:  # refused before the weights load (seconds, and llama.cpp's log lines)
            raise _no_chat_template(path)
        from llama_cpp import Llama

        threads = threads or physical_cores()
        n_ctx = min(n_ctx, info.context_length or n_ctx)
        check_fits(info, n_ctx)  # a model that does not fit would not fail: it would swap the machine to a halt
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=512,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python reports load failures as ValueError
            raise KnownError(f"llama.cpp could not load {path.name}: {exc}") from exc
        return cls(llama, path, n_ctx, threads)

    def close(self) -> None:
        with self._lock:
            if self._adapter is not None:
                self._adapter.close()
            self.llama.close()

    @functools.cached_property
    def sha256(self) -> str:
        """The GGUF's content hash (memoised on disk by size and mtime): its identity for framing and adapters."""
        from personalize.base import file_sha256

        return file_sha256(self.path)

    @functools.cached_property
    def default_system_prompt(self) -> str | None:
        """The system message of a chat without a persona: the framing measured for this GGUF; None for none."""
        from desktop.engine.framing import default_system_prompt

        return default_system_prompt(self.sha256)

    @functools.cached_property
    def default_temperature(self) -> float:
        """The temperature of a request that sets none, measured per GGUF like the framing: a small model
        whose greedy answer is right can still sample nonsense at a chat front end's usual 0.7."""
        from desktop.engine.framing import default_temperature

        return default_temperature(self.sha256)

    # --- tokens -----------------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        return self.llama.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def render(self, messages: Sequence[Message]) -> list[int]:
        """The prompt tokens for messages, ending with the assistant's generation prompt.

        Only the template's own text may become control tokens. Message contents (typed, pasted, or read
        from a document) are tokenized as plain text, so a literal "<|im_end|><|im_start|>system" inside
        them cannot close the turn and forge a system message. The template is rendered with a unique random
        sentinel in place of each content, which separates its text from theirs even when it rewrites them
        (Llama 3 and Gemma `trim` contents); if the sentinels do not come back once each, in order, the
        template's structure cannot be told from the user's text and rendering fails closed.
        """
        sentinels = [f"\u27e6{secrets.token_hex(16)}\u27e7" for _ in messages]
        skeleton = self._format([Message(m.role, s) for m, s in zip(messages, sentinels, strict=True)])
        pieces = self._split_on(skeleton, sentinels)
        if pieces is None:
            raise KnownError(
                f"the chat template of {self.path.name} rewrites message text in a way Hearth cannot render "
                f"safely; use another model"
            )
        contents = self._placed_contents(messages, pieces)
        add_bos = bool(self.llama.metadata.get("tokenizer.ggml.add_bos_token") == "true")
        tokens = [self.llama.token_bos()] if add_bos else []
        template_text = pieces[0]
        for content, after in zip(contents, pieces[1:], strict=True):
            if content:  # template text either side of an empty content is tokenized as one piece, as rendered
                tokens += self._tokenize(template_text, special=True) + self._tokenize(content, special=False)
                template_text = ""
            template_text += after
        return tokens + self._tokenize(template_text, special=True)

    def _format(self, messages: Sequence[Message]) -> str:
        turns: Any = [{"role": m.role, "content": m.content} for m in messages]  # its TypedDict union, per role
        return self._formatter(messages=turns).prompt

    def _placed_contents(self, messages: Sequence[Message], pieces: list[str]) -> list[str]:
        """Each content as the template places it: as is, or stripped where the template trims it."""
        raw = [m.content for m in messages]
        stripped = [c.strip() for c in raw]
        if stripped == raw:
            return raw
        prompt = self._format(messages)
        for candidate in (raw, stripped):
            if prompt == pieces[0] + "".join(c + p for c, p in zip(candidate, pieces[1:], strict=True)):
                return candidate
        return raw  # other rewrites (e.g. dropping a reasoning block): the text is kept whole, still plain

    @staticmethod
    def _split_on(text: str, sentinels: Sequence[str]) -> list[str] | None:
        """`text` cut at each sentinel (len(sentinels) + 1 pieces), or None unless each occurs once, in order."""
        pieces = []
        rest = text
        for sentinel in sentinels:
            before, found, rest = rest.partition(sentinel)
            if not found or any(s in before for s in sentinels):
                return None
            pieces.append(before)
        if any(s in rest for s in sentinels):
            return None
        return [*pieces, rest]

    def _tokenize(self, text: str, special: bool) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special) if text else []

    # --- context window -----------------------------------------------------------------------------

    def fit_to_context(self, messages: Sequence[Message], max_tokens: int) -> tuple[list[int], int, int]:
        """Prompt tokens that fit `n_ctx` with room for `max_tokens`: (tokens, dropped messages, max_tokens).

        Keeps the system prompt and the newest turns; drops the oldest turns first. If the newest user
        message alone is too long, its middle is cut, keeping its start and end (where questions usually are).
        """
        reserve = min(max_tokens, self.n_ctx // 2)
        budget = self.n_ctx - reserve
        system = [m for m in messages[:1] if m.role == "system"]
        turns = list(messages[len(system) :])
        tokens = self.render(system + turns)
        dropped = 0
        if len(tokens) > budget:
            while len(turns) > 1 and len(tokens) > budget * TRIM_TARGET:
                turns.pop(0)
                dropped += 1
                tokens = self.render(system + turns)
            while turns and turns[0].role == "assistant" and len(turns) > 1:
                turns.pop(0)  # a conversation shown to the model starts with the user
                dropped += 1
                tokens = self.render(system + turns)
        if len(tokens) > budget:
            turns[-1] = self._shorten(system, turns, budget)
            tokens = self.render(system + turns)
        if len(tokens) > budget:  # the system prompt itself is too long
            raise KnownError("the system prompt is longer than the model's context window; shorten it")
        return tokens, dropped, min(max_tokens, self.n_ctx - len(tokens))

    def _shorten(self, system: list[Message], turns: list[Message], budget: int) -> Message:
        last = turns[-1]
        overhead = len(self.render([*system, *turns[:-1], Message(last.role, "")]))
        keep = max(0, budget - overhead - 8)
        ids = self.llama.tokenize(last.content.encode("utf-8"), add_bos=False, special=False)
        head, tail = ids[: keep // 2], ids[len(ids) - (keep - keep // 2) :] if keep else []
        text = self.llama.detokenize(head).decode("utf-8", errors="ignore")
        text += "\n[…]\n" + self.llama.detokenize(tail).decode("utf-8", errors="ignore")
        return Message(last.role, text)

    # --- generation ---------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        should_stop: Callable[[], bool] | None = None,
        adapter: AdapterChoice | None = None,
    ) -> Iterator[ChatEvent]:
        """Stream the assistant's reply to messages. Errors arrive as an `error` event, never raised.

        `should_stop` is polled before each token (True: finish as "cancelled"). `adapter` replaces the
        active personal adapter for this reply only (None: the active one); a corrupt or foreign adapter is
        an `error` event and the active one stays.
        """
        params = params or SamplingParams()
        with self._lock:
            try:
                with self._adapter_for(adapter):
                    yield from self._generate(messages, params, should_stop)
            except KnownError as exc:
                yield ChatEvent("error", str(exc))

    def _adapter_for(self, choice: AdapterChoice | None) -> contextlib.AbstractContextManager[None]:
        if choice is None or choice.id == self.adapter_id:
            return contextlib.nullcontext()
        assert choice.id is None or choice.data is not None, "adapter bytes are required to use an adapter"
        return self._live_adapter().borrowed(choice.id, choice.data)

    def _generate(
        self, messages: Sequence[Message], params: SamplingParams, should_stop: Callable[[], bool] | None
    ) -> Iterator[ChatEvent]:
        tokens, dropped, max_tokens = self.fit_to_context(messages, params.max_tokens)
        reused = self._common_prefix(tokens)
        start = time.perf_counter()
        first: float | None = None
        produced = 0
        finish: Literal["stop", "length", "cancelled"] = "stop"
        # Typed as a union with the non-streamed response; stream=True always returns the iterator.
        stream: Any = self.llama.create_completion(
            prompt=tokens,
            max_tokens=max_tokens,
            temperature=self.default_temperature if params.temperature is None else params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repeat_penalty=params.repeat_penalty,
            seed=params.seed,
            stop=self._stop_strings + params.stop,
            stream=True,
        )
        try:
            for chunk in stream:
                if should_stop is not None and should_stop():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
                reason = choice.get("finish_reason")
                if reason is None or choice["text"]:  # the closing chunk carries only finish_reason
                    produced += 1
                if first is None:
                    first = time.perf_counter()
                if choice["text"]:
                    yield ChatEvent("text", choice["text"])
                if reason == "length":
                    finish = "length"
        finally:
            stream.close()
        end = time.perf_counter()
        first = first or end
        stats = GenerationStats(
            prompt_tokens=len(tokens),
            reused_tokens=reused,
            completion_tokens=produced,
            dropped_messages=dropped,
            time_to_first_token_s=first - start,
            decode_tokens_per_s=(produced - 1) / (end - first) if produced > 1 and end > first else 0.0,
            finish_reason=finish,
        )
        self._remember_speed(stats)
        yield ChatEvent("done", stats=stats)

    def _remember_speed(self, stats: GenerationStats) -> None:
        """Record the decode speed for `hearth models list` (only from replies long enough to measure, and
        only when it moved by over 5%, so a chat does not rewrite the settings file every turn)."""
        if stats.completion_tokens < 8 or stats.finish_reason == "cancelled":
            return
        last = self._recorded_speed
        if last and abs(stats.decode_tokens_per_s - last) <= 0.05 * last:
            return
        from desktop.engine.models import record_speed

        try:
            record_speed(self.path, stats.decode_tokens_per_s)
            self._recorded_speed = stats.decode_tokens_per_s
        except (OSError, KnownError) as exc:  # a read-only or full disk must not cost the user an answer
            log.warning("model speed not recorded: %s", exc)

    def _common_prefix(self, tokens: list[int]) -> int:
        cached = self.llama._input_ids[: self.llama.n_tokens]  # what the KV cache holds now
        n = 0
        for a, b in zip(cached, tokens[:-1], strict=False):
            if a != b:
                break
            n += 1
        return n

    def reset_cache(self) -> None:
        """Forget the KV cache (after an adapter swap: cached keys were computed with other weights)."""
        from personalize.runtime import reset_cache

        with self._lock:
            reset_cache(self.llama)

    # --- personal adapter ---------------------------------------------------------------------------

    @property
    def adapter_id(self) -> str | None:
        """The personal adapter applied to the live model, or None for the base model."""
        return self._adapter.active_id if self._adapter is not None else None

    def use_adapter(self, adapter_id: str | None, data: bytes | None = None) -> None:
        """Hot-swap the personal adapter (GGUF bytes) without reloading the model; None turns it off.

        A corrupt adapter, or one trained on another base, raises KnownError and the current one stays.
        """
        with self._lock:
            live = self._live_adapter()
            if adapter_id is None:
                live.off()
            else:
                assert data is not None, "adapter bytes are required to activate an adapter"
                live.use(adapter_id, data)

    def sync_adapter(self, store: Store) -> None:
        """Apply the adapter the store's registry marks active (at startup, after `hearth adapters use`)."""
        with self._lock:
            self._live_adapter().sync(store)

    def _live_adapter(self) -> LiveAdapter:
        if self._adapter is None:
            from personalize.live import LiveAdapter

            self._adapter = LiveAdapter(self.llama, self.sha256)
        return self._adapter


def reply_text(events: Iterator[ChatEvent]) -> tuple[str, GenerationStats | None]:
    """Collect a stream into (text, stats); raise KnownError on an error event."""
    parts: list[str] = []
    stats = None
    for event in events:
        if event.kind == "text":
            parts.append(event.text)
        elif event.kind == "error":
            raise KnownError(event.text)
        else:
            stats = event.stats
    return "".join(parts), stats


def _no_chat_template(path: Path) -> KnownError:
    return KnownError(
        f"{path.name} has no chat template (a base model, not a chat model), so Hearth cannot chat with it; "
        "personalize and eval still work, and `hearth models use` picks a chat model"
    )
