"""How robustly a model answers plain questions under a prompt framing, measured by probabilities, not by
one machine's greedy output.

A small model's first answer token can be a near tie ('La' 0.183 vs 'The' 0.160 for SmolLM2-135M), and
which side wins depends on the CPU's numeric path. So each probe is scored teacher-forced: the expected reply
("The capital of France is Paris") is appended to the rendered prompt, and at every reply position the
probability of the expected token is compared with the best other token. The smallest of those margins is
the probe's margin: while it is positive, greedy decoding produces exactly the expected reply, and its size
says how much numeric noise it survives. A framing's score is its worst probe margin over every numeric path
measured (llama.cpp as built, the torch-dequantized reference); `bench/probe.py` runs both and records the
winner per model in `framings.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop.engine.llama import Message

if TYPE_CHECKING:
    from desktop.engine.llama import Engine

# Plain questions with one right answer, and the reply a helpful assistant opens with.
PROBES: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris"),
    ("What is the capital of Italy?", "The capital of Italy is Rome"),
    ("What is the capital of Spain?", "The capital of Spain is Madrid"),
    ("What is the capital of Germany?", "The capital of Germany is Berlin"),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo"),
    ("What is the boiling point of water in Celsius?", "The boiling point of water in Celsius is approximately 100"),
)

# Candidate framings (the system message): None is no system message at all, so the chat template's own
# default applies (SmolLM2's names itself "SmolLM"); "" is a system block with nothing in it.
FRAMINGS: dict[str, str | None] = {
    "template-default": None,
    "empty-system": "",
    "helpful": "You are a helpful assistant.",
    "concise": "You are a helpful assistant. Answer questions directly and briefly.",
    "english-sentence": "You are a helpful assistant. Reply in one short English sentence.",
}
# Measured for comparison, never chosen as a default: the default frames every chat (letters, summaries,
# code), and these cap the length of every reply to win on one-line probe answers.
RESTRICTING = frozenset({"concise", "english-sentence"})


# Temperatures whose chance of saying the expected reply is measured (the engine's other sampling settings).
TEMPERATURES = (0.2, 0.3, 0.5, 0.7)


@dataclass(frozen=True)
class ProbeScore:
    question: str
    first_token_p: float  # probability of the reply's first token
    first_token_margin: float  # ... minus the best other token's
    margin: float  # the smallest margin over the whole expected reply (greedy reproduces it while > 0)
    weakest_token: int  # position in the reply where that smallest margin sits
    sampled: dict[float, float]  # temperature -> probability that sampling says exactly the expected reply


def messages_for(system: str | None, question: str) -> list[Message]:
    """The chat a framing makes of a question: no system message for None, else that system message."""
    return ([] if system is None else [Message("system", system)]) + [Message("user", question)]


def score(question: str, reply: Sequence[int], logits: np.ndarray) -> ProbeScore:
    """Score a teacher-forced reply from the logits predicting each of its tokens (len(reply) x vocab)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(reply))
    expected = probs[rows, list(reply)]
    others = probs.copy()
    others[rows, list(reply)] = -1.0
    margins = expected - others.max(axis=1)
    weakest = int(margins.argmin())
    sampled = {t: sampled_probability(reply, logits, t) for t in TEMPERATURES}
    return ProbeScore(question, float(expected[0]), float(margins[0]), float(margins[weakest]), weakest, sampled)


def sampled_probability(
    reply: Sequence[int],
    logits: np.ndarray,
    temperature: float,
    top_k: int = 40,
    top_p: float = 0.9,
    min_p: float = 0.05,
    repeat_penalty: float = 1.1,
    penalty_last_n: int = 64,
) -> float:
    """The probability that llama.cpp's sampler chain, as llama-cpp-python builds it (repeat penalty over the
    tokens generated so far, top-k, top-p, min-p, temperature), draws exactly `reply` from these logits.

    Sampling, not greedy decoding, is what a user gets: a reply can have a positive greedy margin and still be
    a coin flip at the default temperature."""
    total = 1.0
    for i, token in enumerate(reply):
        row = logits[i].astype(np.float64)
        seen = np.array(sorted(set(reply[max(0, i - penalty_last_n) : i])), dtype=np.int64)
        if seen.size:
            row[seen] = np.where(row[seen] > 0, row[seen] / repeat_penalty, row[seen] * repeat_penalty)
        order = np.argsort(-row, kind="stable")[:top_k]
        p = np.exp(row[order] - row[order[0]])
        p /= p.sum()
        order = order[: int(np.searchsorted(np.cumsum(p), top_p)) + 1]
        order = order[p[: len(order)] >= min_p * p[0]]
        if token not in order:
            return 0.0
        kept = np.exp((row[order] - row[order[0]]) / temperature)
        total *= float(kept[list(order).index(token)] / kept.sum())
    return total


def probe_inputs(engine: Engine, system: str | None) -> list[tuple[str, list[int], list[int]]]:
    """(question, prompt tokens as Hearth renders them, expected reply tokens) for every probe."""
    out = []
    for question, reply in PROBES:
        prompt = engine.render(messages_for(system, question))
        out.append((question, prompt, engine.llama.tokenize(reply.encode(), add_bos=False, special=False)))
    return out


def llama_scores(engine: Engine, system: str | None) -> list[ProbeScore]:
    """Probe scores on llama.cpp as built here (the engine's Llama must have been made with logits_all)."""
    llama: Any = engine.llama  # llama_cpp's reset() and eval() carry no annotations
    scores = []
    for question, prompt, reply in probe_inputs(engine, system):
        llama.reset()
        llama.eval(prompt + reply)
        logits = np.array(llama.scores[len(prompt) - 1 : len(prompt) - 1 + len(reply)], dtype=np.float64)
        scores.append(score(question, reply, logits))
    return scores
