"""Turns the user's documents and conversations into packed training blocks and a held-out set.

Documents are trained on as plain text (they teach vocabulary and style); conversations are rendered with
the model's own chat template, so the adapter learns the dialogue format the chat actually uses. Everything is
packed into one token stream cut into fixed-length blocks: no padding, so every token computed is a token
learned from. The held-out set is whole sources (documents or conversations), never pieces of a training
source, so its perplexity measures generalisation to unseen text and not memorisation.

Inputs are plain Python values so this is testable without the store; `personalize.store_io` reads them from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.errors import KnownError

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": "..."}
Conversation = tuple[str, list[Message]]  # (conversation id, messages in order)
Document = tuple[str, str]  # (document id, text); several entries with one id are chunks of one document

# Below this many training tokens a LoRA mostly memorises noise; about 0.75 words per token for English.
MIN_TRAIN_TOKENS = 3000
MIN_HELDOUT_TOKENS = 128


@dataclass
class Dataset:
    """Packed training blocks plus held-out windows, all as token ids of the base model's tokenizer."""

    blocks: list[list[int]]  # each exactly seq_len tokens
    heldout: list[list[int]]  # windows of at most seq_len tokens, from held-out sources only
    train_sources: list[str] = field(default_factory=list)
    heldout_sources: list[str] = field(default_factory=list)
    fingerprint: str = ""  # hash of the training token stream: tells an incremental run what is new

    @property
    def train_tokens(self) -> int:
        return sum(len(b) for b in self.blocks)

    @property
    def heldout_tokens(self) -> int:
        return sum(len(w) for w in self.heldout)


@dataclass(frozen=True)
class Tokenizer:
    """The three things the dataset needs from a tokenizer, so tests can pass any real tokenizer."""

    encode: Callable[[str], list[int]]
    render_chat: Callable[[list[Message]], str]
    eos_id: int

    @classmethod
    def from_hf(cls, tokenizer: Any) -> Tokenizer:
        """Wrap a transformers tokenizer (the base model's, with its chat template)."""

        def render(messages: list[Message]) -> str:
            return str(tokenizer.apply_chat_template(messages, tokenize=False))

        return cls(
            encode=lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]),
            render_chat=render,
            eos_id=int(tokenizer.eos_token_id),
        )


def build(
    documents: Sequence[Document],
    conversations: Sequence[Conversation],
    tokenizer: Tokenizer,
    seq_len: int = 512,
    heldout_fraction: float = 0.1,
) -> Dataset:
    """Tokenize, split by source, and pack. Raises KnownError when there is too little text to learn from."""
    sources = _sources(documents, conversations, tokenizer)
    total = sum(len(ids) for _, ids in sources)
    needed = MIN_TRAIN_TOKENS + MIN_HELDOUT_TOKENS
    if total < needed or len(sources) == 0:
        raise KnownError(
            "Not enough text to personalize yet: about "
            f"{_words(total)} words of documents and chats found, at least about {_words(needed)} needed. "
            "Add documents or chat more, then try again."
        )
    train, held = _split(sources, heldout_fraction)
    train_ids = _pack_stream((ids for _, ids in train), tokenizer.eos_id)
    blocks = [train_ids[i : i + seq_len] for i in range(0, len(train_ids) - seq_len + 1, seq_len)]
    heldout = [w for _, ids in held for w in _windows(ids, seq_len)]
    dataset = Dataset(
        blocks=blocks,
        heldout=heldout,
        train_sources=[name for name, _ in train],
        heldout_sources=[name for name, _ in held],
        fingerprint=hashlib.sha256(repr(train_ids).encode()).hexdigest(),
    )
    if dataset.train_tokens < MIN_TRAIN_TOKENS or dataset.heldout_tokens < MIN_HELDOUT_TOKENS:
        raise KnownError(
            f"Not enough text to personalize yet: about {_words(dataset.train_tokens)} words to train on, "
            f"at least about {_words(MIN_TRAIN_TOKENS)} needed (longer documents or more chats help)."
        )
    return dataset


def precheck(documents: Sequence[Document], conversations: Sequence[Conversation]) -> None:
    """Refuse clearly-too-little text before paying for a model load (estimate: ~4 characters per token)."""
    chars = sum(len(text) for _, text in documents)
    chars += sum(len(m.get("content", "")) for _, messages in conversations for m in messages)
    needed = MIN_TRAIN_TOKENS + MIN_HELDOUT_TOKENS
    if chars // 4 < needed:
        raise KnownError(
            f"Not enough text to personalize yet: about {_words(chars // 4)} words of documents and chats found, "
            f"at least about {_words(needed)} needed. Add documents or chat more, then try again."
        )


def _sources(
    documents: Sequence[Document], conversations: Sequence[Conversation], tokenizer: Tokenizer
) -> list[tuple[str, list[int]]]:
    """One token list per source, in a stable order; chunks of a document are joined in the order given."""
    texts: dict[str, list[str]] = {}
    for doc_id, text in documents:
        if text and text.strip():
            texts.setdefault(f"doc:{doc_id}", []).append(text.strip())
    out = [(name, tokenizer.encode("\n\n".join(parts))) for name, parts in texts.items()]
    for conv_id, messages in conversations:
        kept = [m for m in messages if m.get("content", "").strip() and m.get("role") in ("user", "assistant")]
        if any(m["role"] == "user" for m in kept):
            out.append((f"chat:{conv_id}", tokenizer.encode(tokenizer.render_chat(kept))))
    return [(name, ids) for name, ids in out if ids]


def _split(
    sources: list[tuple[str, list[int]]], fraction: float
) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """Hold out whole sources chosen by a stable hash of their id until `fraction` of the tokens.

    With a single source there is nothing whole to hold out, so its tail is held out instead (better than
    refusing a user whose data is one long document).
    """
    if len(sources) == 1:
        name, ids = sources[0]
        cut = len(ids) - max(MIN_HELDOUT_TOKENS, int(len(ids) * fraction))
        return [(name, ids[:cut])], [(name + "#tail", ids[cut:])]
    total = sum(len(ids) for _, ids in sources)
    target = max(MIN_HELDOUT_TOKENS, int(total * fraction))
    held_names: set[str] = set()
    held_tokens = 0
    for name, ids in sorted(sources, key=lambda s: hashlib.sha256(s[0].encode()).hexdigest()):
        if held_tokens >= target:
            break
        if held_tokens + len(ids) > max(2 * target, total // 2):
            continue  # one huge source would leave too little to train on
        held_names.add(name)
        held_tokens += len(ids)
    if not held_names:  # every source is large: hold out the smallest one
        held_names.add(min(sources, key=lambda s: len(s[1]))[0])
    train = [s for s in sources if s[0] not in held_names]
    held = [s for s in sources if s[0] in held_names]
    return train, held


def _pack_stream(token_lists: Iterable[list[int]], eos_id: int) -> list[int]:
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(eos_id)
    return stream


def _windows(ids: list[int], size: int) -> list[list[int]]:
    """Non-overlapping windows; a last window shorter than 16 tokens is dropped (too little context)."""
    return [ids[i : i + size] for i in range(0, len(ids), size) if len(ids[i : i + size]) >= 16]


def _words(tokens: int) -> int:
    return int(tokens * 0.75)
