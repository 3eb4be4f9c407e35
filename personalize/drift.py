"""The forgetting guard: how far an adapter moves the assistant on general text the user never wrote.

The user's held-out text shows what an adapter gained; this shows what it cost. `general_prompts.json` ships
a fixed set of general assistant prompts. The base model answers them once (greedy, in llama.cpp, under the
chat template), and an adapter's drift is the perplexity of those answers under the adapter divided by their
perplexity under the base: 1.0 means unchanged, 1.2 means the adapter finds the base's ordinary answers 20%
less likely (the issue's harmful 6-minute run measured 1.22 and answered "List three uses of a paperclip"
with socket-library advice). Only answer tokens are scored; the prompt is context. Where a prompt has a short
reference answer, its per-token probability is reported as well (a check that does not trust the base's own
answers).

The prompts come in two disjoint halves: "drift" is only ever measured, "replay" is mixed into training as
the base's own answers (`replay_sequences`, see `dataset.build`), so training keeps rehearsing general chat
while the measure stays honest (the adapter never saw the drift answers).

The answers are public text (a public model answering prompts shipped here), but like everything Hearth keeps
they are cached in the encrypted store (settings, keyed by base model and prompt file), never in a file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalize import dataset, runtime

PROMPTS_FILE = Path(__file__).with_name("general_prompts.json")
ANSWER_TOKENS = 48  # enough for a sentence or two of each answer; 40 prompts generate in ~20 s on 2 cores
CACHE_KEY = "personalize.general_answers"
HALVES = ("drift", "replay")
# Refuse to activate an adapter whose drift exceeds this. Measured on the bundled model (base answer perplexity
# 2.04; README, "Why the limit is 1.10", and bench/drift.py): short normal runs on real prose (git release
# notes, the standard library's docs) drifted 1.005-1.061; the 6-minute release-notes run (no replay),
# whose chat visibly
# broke, 1.22; a gentle run that had learnt to answer in a made-up ledger's voice 1.27; over-trained runs
# 1.37 (50% replay) to 21,547 (no replay). 1.10 sits between the harmless and the harmful, with a margin on
# each side for CPUs whose greedy base answers differ.
DRIFT_LIMIT = 1.10


@dataclass(frozen=True)
class Item:
    """One general prompt as token ids: the rendered chat prompt, the base's answer, a reference answer."""

    prompt: list[int]
    answer: list[int]
    reference: list[int] | None = None


@dataclass(frozen=True)
class GeneralSet:
    drift: list[Item]  # measured, never trained on
    replay: list[Item]  # trained on, never measured


@dataclass(frozen=True)
class Score:
    """How one model (base, or base + adapter) rates the general set."""

    answer_ppl: float  # perplexity of the base's answers
    reference_p: float | None  # mean per-token probability of the reference answers (None: the set has none)


def prompts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))
    return data


def general_set(store: Any, llama: Any, tokenizer: Any, base_sha256: str) -> GeneralSet:
    """The base's answers to the shipped prompts: from the store's cache, else generated now and cached.

    The cache is keyed by the base's sha256 and is valid only for the same prompts file and answer length and
    for exactly the same rendered prompts (token ids): a new chat template, tokenizer or system message in the
    prompts file means new answers.
    """
    spec = prompts()
    rendered = {half: [_render(tokenizer, spec["system"], e["prompt"]) for e in spec[half]] for half in HALVES}
    cached = store.settings.get(_cache_key(base_sha256)) if store is not None else None
    if (
        isinstance(cached, dict)
        and cached.get("version") == _version()
        and all([item["prompt"] for item in cached[half]] == rendered[half] for half in HALVES)
    ):
        return GeneralSet(*([Item(**item) for item in cached[half]] for half in HALVES))
    general = GeneralSet(
        *(
            [_answer(llama, tokenizer, prompt, entry) for prompt, entry in zip(rendered[half], spec[half], strict=True)]
            for half in HALVES
        )
    )
    if store is not None:
        remember(store, base_sha256, general)
    return general


def remember(store: Any, base_sha256: str, general: GeneralSet) -> None:
    """Cache a base model's answers in the store (tests also use this to pay for generation once)."""
    halves = {"drift": general.drift, "replay": general.replay}
    value = {"version": _version(), **{half: [vars(i) for i in halves[half]] for half in HALVES}}
    store.settings.set(_cache_key(base_sha256), value)


def score(llama: Any, items: list[Item]) -> Score:
    """Rate the set with whatever adapter is active on `llama` now."""
    nll, count, ref_p = 0.0, 0, []
    for item in items:
        item_nll, n = runtime.sequence_nll(llama, item.prompt + item.answer, score_from=len(item.prompt))
        nll, count = nll + item_nll, count + n
        if item.reference:
            ref_nll, ref_n = runtime.sequence_nll(llama, item.prompt + item.reference, score_from=len(item.prompt))
            ref_p.append(math.exp(-ref_nll / ref_n))
    runtime.reset_cache(llama)
    return Score(math.exp(nll / max(count, 1)), sum(ref_p) / len(ref_p) if ref_p else None)


def drift(base: Score, adapter: Score) -> float:
    """Answer perplexity under the adapter / under the base: > 1 means the adapter moved away from general chat."""
    return adapter.answer_ppl / base.answer_ppl


def replay_sequences(general: GeneralSet) -> list[list[int]]:
    """The replay half as training sequences: prompt then answer, exactly as the chat would render them."""
    return [item.prompt + item.answer for item in general.replay]


def _cache_key(base_sha256: str) -> str:
    return f"{CACHE_KEY}.{base_sha256[:16]}"


def _version() -> str:
    """Changes when the prompts file or the answer length changes, so stale answers are regenerated."""
    return hashlib.sha256(PROMPTS_FILE.read_bytes()).hexdigest()[:16] + f"-{ANSWER_TOKENS}"


def _render(tokenizer: Any, system: str, prompt: str) -> list[int]:
    """The prompt as the chat renders it; a base model without a chat template gets a plain transcript after
    its BOS (which its template would otherwise supply: Gemma's perplexities are meaningless without it)."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    rendered = dataset.render_messages(tokenizer, messages, generation_prompt=True)
    ids = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    if not getattr(tokenizer, "chat_template", None) and bos is not None and ids[:1] != [bos]:
        ids.insert(0, int(bos))
    return ids


def _answer(llama: Any, tokenizer: Any, prompt: list[int], entry: dict[str, str]) -> Item:
    answer = runtime.complete(llama, prompt, ANSWER_TOKENS)
    reference = entry.get("reference")
    ref_ids = list(tokenizer(reference, add_special_tokens=False)["input_ids"]) if reference else None
    return Item(prompt, answer, ref_ids)
