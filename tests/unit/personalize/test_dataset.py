"""Dataset building: packing without padding, held-out split by whole source, clear refusal of too little data."""

from __future__ import annotations

import pytest

from personalize import dataset
from personalize.dataset import Tokenizer
from storage.errors import KnownError

EOS = 0


def word_tokenizer() -> Tokenizer:
    """A real (if simple) tokenizer: one id per whitespace-separated word, stable across calls."""
    vocab: dict[str, int] = {}

    def encode(text: str) -> list[int]:
        return [vocab.setdefault(word, len(vocab) + 1) for word in text.split()]

    def render(messages: list[dict[str, str]]) -> str:
        return " ".join(f"<{m['role']}> {m['content']} </{m['role']}>" for m in messages)

    return Tokenizer(encode=encode, render_chat=render, eos_id=EOS)


def docs(n: int, words: int) -> list[tuple[str, str]]:
    return [(f"d{i}", " ".join(f"w{i}_{j}" for j in range(words))) for i in range(n)]


def test_blocks_are_full_length_and_hold_every_training_token() -> None:
    data = dataset.build(docs(10, 500), [], word_tokenizer(), seq_len=64)
    assert all(len(b) == 64 for b in data.blocks)
    assert len(data.blocks) >= 60
    held = set(data.heldout_sources)
    assert held and not held & set(data.train_sources)
    # packing: tokens of consecutive training sources follow each other with one EOS between them
    stream = [t for b in data.blocks for t in b]
    assert stream.count(EOS) >= len(data.train_sources) - 1


def test_heldout_tokens_never_appear_in_training() -> None:
    data = dataset.build(docs(12, 400), [], word_tokenizer(), seq_len=32)
    train_ids = {t for b in data.blocks for t in b}
    held_ids = {t for w in data.heldout for t in w}
    assert held_ids and not (held_ids & train_ids)


def test_split_is_stable() -> None:
    a = dataset.build(docs(12, 400), [], word_tokenizer(), seq_len=32)
    b = dataset.build(docs(12, 400), [], word_tokenizer(), seq_len=32)
    assert a.heldout_sources == b.heldout_sources and a.fingerprint == b.fingerprint


def test_single_document_holds_out_its_tail() -> None:
    data = dataset.build(docs(1, 5000), [], word_tokenizer(), seq_len=64)
    assert data.heldout_sources == ["doc:d0#tail"]
    assert data.heldout_tokens >= dataset.MIN_HELDOUT_TOKENS


def test_conversations_keep_user_and_assistant_turns_only() -> None:
    rendered: list[list[dict[str, str]]] = []
    tok = word_tokenizer()
    spy = Tokenizer(tok.encode, lambda m: rendered.append(m) or tok.render_chat(m), EOS)
    conversation = [
        {"role": "system", "content": "secret system prompt"},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "   "},
        {"role": "assistant", "content": "general kenobi"},
    ]
    dataset.build(docs(8, 500), [("c1", conversation)], spy, seq_len=64)
    assert rendered == [[conversation[1], conversation[3]]]


def test_too_little_data_says_how_much_is_needed() -> None:
    with pytest.raises(KnownError, match=r"at least about \d[\d,]* needed") as info:
        dataset.build(docs(2, 100), [], word_tokenizer(), seq_len=64)
    assert "words" in str(info.value)


def test_no_data_at_all_is_a_known_error() -> None:
    with pytest.raises(KnownError, match="Not enough text"):
        dataset.build([], [], word_tokenizer())


def prose(seed: int, words: int) -> str:
    """Distinct English-like text per seed (real words, so shingles behave as on real documents)."""
    import random

    rng = random.Random(seed)
    vocab = ["the", "a", "river", "stone", "letter", "garden", "morning", "winter", "road", "bright", "slow", "we"]
    return " ".join(rng.choice(vocab) + str(rng.randint(0, 9)) for _ in range(words))


def test_near_duplicates_land_on_the_same_side_of_the_split() -> None:
    """Twelve documents, each saved twice with a few words changed: no held-out text may have its twin trained on.

    Without grouping, the hash split (by name) separates some twin pairs: this test fails then.
    """
    originals = [(f"doc{i}", prose(i, 400)) for i in range(12)]
    twins = [(f"{name}-copy", text.replace("river", "stream", 3) + " Saved again.") for name, text in originals]
    chats = [("c1", [{"role": "user", "content": originals[0][1]}, {"role": "assistant", "content": "Noted."}])]
    data = dataset.build(originals + twins, chats, word_tokenizer(), seq_len=32, heldout_fraction=0.3)
    held = set(data.heldout_sources)
    assert held
    for name, _ in originals:
        pair = {f"doc:{name}", f"doc:{name}-copy"}
        assert pair <= held or not pair & held, pair
    assert ("chat:c1" in held) == ("doc:doc0" in held)  # the document pasted into a chat is its duplicate too
    assert data.near_duplicates == 25


def test_shared_stock_phrases_are_not_near_duplicates() -> None:
    sign_off = "With kind regards and best wishes, Sam"
    letters = {f"doc:l{i}": f"Dear friend, {prose(100 + i, 300)} {sign_off}" for i in range(6)}
    assert dataset.near_duplicate_groups(letters) == []
    letters["doc:l0-again"] = letters["doc:l0"][: len(letters["doc:l0"]) // 2]  # the first half, saved again
    assert dataset.near_duplicate_groups(letters) == [{"doc:l0", "doc:l0-again"}]


def test_replay_is_mixed_through_training_and_never_held_out() -> None:
    replay = [[900_000 + i, 900_100 + i, 900_200 + i] * 10 for i in range(5)]
    data = dataset.build(docs(10, 500), [], word_tokenizer(), seq_len=64, replay=replay, replay_fraction=0.2)
    stream = [t for b in data.blocks for t in b]
    replayed = [i for i, t in enumerate(stream) if t >= 900_000]
    assert 0.17 < data.replay_tokens / (data.train_tokens + 64) < 0.23
    assert replayed[0] < len(stream) // 4 and replayed[-1] > 3 * len(stream) // 4  # spread, not appended
    assert not any(t >= 900_000 for w in data.heldout for t in w)
    plain = dataset.build(docs(10, 500), [], word_tokenizer(), seq_len=64)
    assert plain.replay_tokens == 0 and plain.heldout_sources == data.heldout_sources


class TemplateTokenizer:
    """The two attributes `render_messages` reads, as a transformers tokenizer has them."""

    def __init__(self, template: str | None) -> None:
        self.chat_template = template

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        return "|".join(m["content"] for m in messages) + ("|>" if add_generation_prompt else "")


def test_a_base_model_without_a_chat_template_gets_a_plain_transcript() -> None:
    """Gemma 3 270M base has no chat template: its user's chats (and the drift prompts) become plain text."""
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    assert dataset.render_messages(TemplateTokenizer(None), messages) == "User: Hi\nAssistant: Hello."
    prompt = dataset.render_messages(TemplateTokenizer(None), messages[:1], generation_prompt=True)
    assert prompt == "User: Hi\nAssistant:"
    assert dataset.render_messages(TemplateTokenizer("{{x}}"), messages, generation_prompt=True) == "Hi|Hello.|>"
