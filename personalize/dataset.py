"""Turns the user's documents and conversations into packed training blocks and a held-out set.

Documents are trained on as plain text (they teach vocabulary and style); conversations are rendered with
the model's own chat template, so the adapter learns the dialogue format the chat actually uses. Everything is
packed into one token stream cut into fixed-length blocks: no padding, so every token computed is a token
learned from. The held-out set is whole sources (documents or conversations), never pieces of a training
source, so its perplexity measures generalisation to unseen text and not memorisation. Sources that are
near-duplicates of each other (the same letter saved twice, a document pasted into a chat) are found before
the split and kept on one side together: otherwise the held-out "gain" would be partly recall of text trained
on. Replay sequences (the base model's own answers to general prompts, see `drift`) are interleaved with the
user's training text, never held out.

Inputs are plain Python values so this is testable without the store; `personalize.store_io` reads them from it.
"""

from __future__ import annotations

import hashlib
import re
import zlib
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
# Near-duplicate detection: word 5-shingles, one in SHINGLE_SAMPLE kept by hash (Broder's mod-m sampling: the
# same shingles are kept in every source, so containment estimates stay unbiased at 1/m of the memory). Two
# sources are near-duplicates when half of the smaller one's sampled shingles occur in the other.
SHINGLE_WORDS = 5
SHINGLE_SAMPLE = 4
DUPLICATE_CONTAINMENT = 0.5
COMMON_SHINGLE_SOURCES = 50  # a shingle in more sources than this is a stock phrase, not a copy


@dataclass
class Dataset:
    """Packed training blocks plus held-out windows, all as token ids of the base model's tokenizer."""

    blocks: list[list[int]]  # each exactly seq_len tokens
    heldout: list[list[int]]  # windows of at most seq_len tokens, from held-out sources only
    train_sources: list[str] = field(default_factory=list)
    heldout_sources: list[str] = field(default_factory=list)
    fingerprint: str = ""  # hash of the training token stream: tells an incremental run what is new
    near_duplicates: int = 0  # sources kept with a near-duplicate on the same side of the split
    replay_tokens: int = 0  # training tokens that are replay (general chat), not the user's text

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
            return render_messages(tokenizer, messages)

        return cls(
            encode=lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]),
            render_chat=render,
            eos_id=int(tokenizer.eos_token_id),
        )


def render_messages(tokenizer: Any, messages: list[Message], generation_prompt: bool = False) -> str:
    """Messages as the model sees them: its chat template, or a plain transcript for a base model without one.

    A base model (Gemma 3 270M, say) cannot chat in Hearth, but it can still be personalized: the user's
    chats then train it, and the forgetting guard measures it, as "User: ...\nAssistant: ..." text, which
    a base model continues as it would any other document.
    """
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt))
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines + (["Assistant:"] if generation_prompt else []))


def build(
    documents: Sequence[Document],
    conversations: Sequence[Conversation],
    tokenizer: Tokenizer,
    seq_len: int = 512,
    heldout_fraction: float = 0.1,
    replay: Sequence[list[int]] = (),
    replay_fraction: float = 0.0,
) -> Dataset:
    """Tokenize, split by source, and pack. Raises KnownError when there is too little text to learn from.

    `replay_fraction` of the training tokens are `replay` sequences (cycled as needed), spread evenly through
    the user's text so most blocks rehearse a little general chat.
    """
    texts = _source_texts(documents, conversations)
    sources = _sources(texts, tokenizer)
    total = sum(len(ids) for _, ids in sources)
    needed = MIN_TRAIN_TOKENS + MIN_HELDOUT_TOKENS
    if total < needed or len(sources) == 0:
        raise KnownError(
            "Not enough text to personalize yet: about "
            f"{_words(total)} words of documents and chats found, at least about {_words(needed)} needed. "
            "Add documents or chat more, then try again."
        )
    groups = near_duplicate_groups({name: texts[name] for name, _ in sources})
    train, held = _split(sources, heldout_fraction, groups)
    user_tokens = sum(len(ids) for _, ids in train)
    mixed = _interleave([ids for _, ids in train], replay, replay_fraction)
    train_ids = _pack_stream(mixed, tokenizer.eos_id)
    blocks = [train_ids[i : i + seq_len] for i in range(0, len(train_ids) - seq_len + 1, seq_len)]
    heldout = [w for _, ids in held for w in _windows(ids, seq_len)]
    dataset = Dataset(
        blocks=blocks,
        heldout=heldout,
        train_sources=[name for name, _ in train],
        heldout_sources=[name for name, _ in held],
        fingerprint=hashlib.sha256(repr(train_ids).encode()).hexdigest(),
        near_duplicates=sum(len(g) for g in groups),
        replay_tokens=sum(len(ids) for ids in mixed) - user_tokens,
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


SourceText = str | list[Message]  # a document's text, or a conversation's kept messages


def _source_texts(documents: Sequence[Document], conversations: Sequence[Conversation]) -> dict[str, SourceText]:
    """One text per source, in a stable order: chunks of a document joined in the order given; a conversation
    as its user and assistant turns (rendered with the chat template later)."""
    texts: dict[str, list[str]] = {}
    for doc_id, text in documents:
        if text and text.strip():
            texts.setdefault(f"doc:{doc_id}", []).append(text.strip())
    out: dict[str, SourceText] = {name: "\n\n".join(parts) for name, parts in texts.items()}
    for conv_id, messages in conversations:
        kept = [m for m in messages if m.get("content", "").strip() and m.get("role") in ("user", "assistant")]
        if any(m["role"] == "user" for m in kept):
            out[f"chat:{conv_id}"] = kept  # rendered with the chat template in _sources
    return out


def _sources(texts: dict[str, SourceText], tokenizer: Tokenizer) -> list[tuple[str, list[int]]]:
    out = []
    for name, value in texts.items():
        ids = tokenizer.encode(value if isinstance(value, str) else tokenizer.render_chat(value))
        if ids:
            out.append((name, ids))
    return out


def near_duplicate_groups(texts: dict[str, SourceText]) -> list[set[str]]:
    """Sets of sources (two or more each) that are near-duplicates of one another, transitively.

    Shingles are taken from the words of the text (a conversation's message contents only, so the chat
    template's tokens shared by every chat do not count as duplication). Candidate pairs come from an inverted
    index over sampled shingles, so the cost grows with the text, not with the square of the sources.
    """
    shingles = {name: _shingles(_plain(value)) for name, value in texts.items()}
    index: dict[int, list[str]] = {}
    for name, found in shingles.items():
        for shingle in found:
            index.setdefault(shingle, []).append(name)
    shared: dict[tuple[str, str], int] = {}
    for names in index.values():
        if 1 < len(names) <= COMMON_SHINGLE_SOURCES:
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    shared[(a, b)] = shared.get((a, b), 0) + 1
    parent = {name: name for name in texts}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for (a, b), count in shared.items():
        smaller = min(len(shingles[a]), len(shingles[b]))
        if smaller and count / smaller >= DUPLICATE_CONTAINMENT:
            parent[root(a)] = root(b)
    groups: dict[str, set[str]] = {}
    for name in texts:
        groups.setdefault(root(name), set()).add(name)
    return [g for g in groups.values() if len(g) > 1]


def _plain(value: SourceText) -> str:
    return value if isinstance(value, str) else "\n".join(m["content"] for m in value)


def _shingles(text: str) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    out = set()
    for i in range(max(0, len(words) - SHINGLE_WORDS + 1)):
        value = zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode())
        if value % SHINGLE_SAMPLE == 0:
            out.add(value)
    return out


def _split(
    sources: list[tuple[str, list[int]]], fraction: float, groups: Sequence[set[str]] = ()
) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """Hold out whole sources chosen by a stable hash of their id until `fraction` of the tokens.

    Near-duplicate `groups` are decided as one unit (held out together or trained on together). With a single
    source there is nothing whole to hold out, so its tail is held out instead (better than refusing a user
    whose data is one long document).
    """
    if len(sources) == 1:
        name, ids = sources[0]
        cut = len(ids) - max(MIN_HELDOUT_TOKENS, int(len(ids) * fraction))
        return [(name, ids[:cut])], [(name + "#tail", ids[cut:])]
    total = sum(len(ids) for _, ids in sources)
    target = max(MIN_HELDOUT_TOKENS, int(total * fraction))
    sizes = {name: len(ids) for name, ids in sources}
    grouped = {name for group in groups for name in group}
    units = [sorted(g & sizes.keys()) for g in groups] + [[name] for name in sizes if name not in grouped]
    units = [u for u in units if u]
    held_names: set[str] = set()
    held_tokens = 0
    for unit in sorted(units, key=lambda u: hashlib.sha256(u[0].encode()).hexdigest()):
        if held_tokens >= target:
            break
        size = sum(sizes[name] for name in unit)
        if held_tokens + size > max(2 * target, total // 2):
            continue  # one huge source would leave too little to train on
        held_names.update(unit)
        held_tokens += size
    if not held_names:  # every unit is large: hold out the smallest one
        held_names.update(min(units, key=lambda u: sum(sizes[name] for name in u)))
    train = [s for s in sources if s[0] not in held_names]
    held = [s for s in sources if s[0] in held_names]
    return train, held


def _interleave(user: list[list[int]], replay: Sequence[list[int]], fraction: float) -> list[list[int]]:
    """The user's sources with replay sequences spread evenly between them, replay making `fraction` of tokens."""
    if not replay or fraction <= 0 or not user:
        return list(user)
    want = fraction / (1 - fraction) * sum(len(ids) for ids in user)
    extra: list[list[int]] = []
    have = 0
    while have < want:
        extra.append(list(replay[len(extra) % len(replay)]))
        have += len(extra[-1])
    # Replay item k goes after user source floor(k * n / len(extra)): even spacing, deterministic.
    out: list[list[int]] = []
    k = 0
    for i, ids in enumerate(user):
        out.append(ids)
        while k < len(extra) and k * len(user) // len(extra) <= i:
            out.append(extra[k])
            k += 1
    return out + extra[k:]


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
