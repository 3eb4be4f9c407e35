"""The forgetting guard end to end: real training, real export, drift measured in llama.cpp on the base's own
answers to the shipped general prompts, the bundled model, the real pipeline and encrypted store. The pair: a
run deliberately over-trained on narrow text (high constant learning rate, no replay) is refused and stays
inactive, while a normal run (the trainer's defaults, the pipeline's replay) on ordinary prose is activated.

Margins, not exact values: the base's greedy answers differ between CPUs, so each run must clear the limit by
a wide margin on either side (README, "Why the limit is 1.10").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SAMPLE_KEYS = ("prompt", "truth", "base", "adapter")
SMALL = {"seq_len": 64, "batch_size": 2, "warmup_steps": 2, "threads": 1}


def chats(store: Any, documents: list[tuple[str, str]]) -> None:
    for doc_id, text in documents:
        conversation = store.chats.create(title=doc_id)
        store.chats.add_message(conversation, "user", f"Write the {doc_id} entries.")
        store.chats.add_message(conversation, "assistant", text)


def stdlib_prose() -> list[tuple[str, str]]:
    """Ordinary technical prose by real authors that every Python install has: the standard library's docs."""
    import importlib
    import inspect

    names = [
        "argparse",
        "collections",
        "functools",
        "itertools",
        "json",
        "logging",
        "pathlib",
        "re",
        "subprocess",
        "textwrap",
        "threading",
        "unittest",
        "email.message",
        "http.client",
        "sqlite3",
        "csv",
        "decimal",
        "fractions",
        "heapq",
        "bisect",
    ]
    docs = []
    for name in names:
        module = importlib.import_module(name)
        parts = [inspect.getdoc(module) or ""]
        parts += [inspect.getdoc(obj) or "" for _, obj in inspect.getmembers(module, callable)][:30]
        docs.append((name, "\n\n".join(p for p in parts if len(p) > 80)[:3000]))
    return [d for d in docs if len(d[1]) > 1000]


def test_a_normal_run_on_ordinary_prose_is_activated(
    store: Any, base_cache: Path, general_cached: None, record_property: Any
) -> None:
    """The other half of the pair: default learning rate and replay, real prose; drift stays under the limit."""
    from personalize import drift, pipeline, proof, registry
    from personalize.train import TrainConfig

    chats(store, stdlib_prose())
    normal = pipeline.run(store, TrainConfig(**SMALL, max_steps=20))
    record_property("report", repr(normal))  # the README's table rows come from these (--junitxml)
    assert normal.state == "activated", normal
    assert normal.drift is not None and normal.drift < drift.DRIFT_LIMIT
    assert normal.adapter_ppl is not None and normal.base_ppl is not None and normal.adapter_ppl < normal.base_ppl
    reg = registry.Registry(store)
    assert reg.active_id() == normal.adapter_id
    # The proof `status --json` and the Personalize view show, from this real run.
    shown = proof.version(reg.get(normal.adapter_id))
    assert shown["gain"] > 0 and shown["drift"] == normal.drift and not shown["refused"]
    assert shown["tokens_trained"] == normal.tokens_trained > 0 and shown["seconds"] > 0
    assert len(shown["samples"]) == 3
    assert all(sample["prompt"] and sample["truth"] and set(sample) == set(SAMPLE_KEYS) for sample in shown["samples"])


def test_an_overtrained_adapter_is_refused_and_stays_inactive(
    store: Any, base_cache: Path, general_cached: None, ledger_documents: list[tuple[str, str]], record_property: Any
) -> None:
    """Measured here: drift 21,547x for this run (limit 1.10), so the margin does not hinge on one CPU."""
    from personalize import drift, pipeline, proof, registry
    from personalize.train import TrainConfig

    chats(store, ledger_documents)
    reg = registry.Registry(store)
    overtrained = pipeline.run(store, TrainConfig(**SMALL, lr=1e-2, min_lr=1e-2, max_steps=30), replay_fraction=0.0)
    record_property("report", repr(overtrained))
    assert overtrained.state == "refused", overtrained
    assert overtrained.drift is not None and overtrained.drift > 10 * drift.DRIFT_LIMIT
    assert reg.active() is None  # nothing was switched to
    record = reg.get(overtrained.adapter_id)
    assert record.refused and "general answers" in record.refused
    shown = proof.version(record)
    assert shown["drift"] == overtrained.drift and any("drifted" in w for w in shown["warnings"])
    assert record.general_adapter_ppl > record.general_base_ppl
    assert len(record.samples) == 3


def test_general_answers_are_cached_per_model_and_framing(
    store: Any, converted_base_dir: Path, bundled_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated once, then reused from the encrypted store; regenerated for another model or a new framing."""
    import json

    from transformers import AutoTokenizer

    from personalize import drift, pipeline, runtime

    prompts = tmp_path / "prompts.json"
    spec = {
        "system": "You answer in one short sentence.",
        "drift": [{"prompt": "Name a colour of the sky."}],
        "replay": [{"prompt": "Say hi."}],
    }
    prompts.write_text(json.dumps(spec))
    monkeypatch.setattr(drift, "PROMPTS_FILE", prompts)
    monkeypatch.setattr(drift, "ANSWER_TOKENS", 6)
    generated: list[list[int]] = []
    real_complete = runtime.complete

    def counting_complete(llama: Any, prompt: Any, max_tokens: int) -> list[int]:
        generated.append(list(prompt))
        return real_complete(llama, prompt, max_tokens)

    monkeypatch.setattr(runtime, "complete", counting_complete)
    llama = pipeline.open_llama(bundled_model, 128, threads=1)
    tokenizer = AutoTokenizer.from_pretrained(str(converted_base_dir))
    sha = "a" * 64

    first = drift.general_set(store, llama, tokenizer, sha)
    assert len(generated) == 2
    assert drift.general_set(store, llama, tokenizer, sha) == first and len(generated) == 2  # reused
    assert store.settings.get(drift._cache_key(sha))["drift"][0]["answer"] == first.drift[0].answer  # in the store
    drift.general_set(store, llama, tokenizer, "b" * 64)  # another base model: its own answers
    assert len(generated) == 4
    tokenizer.chat_template = tokenizer.chat_template.replace("<|im_start|>", "<|im_start|> ")  # a new framing
    reframed = drift.general_set(store, llama, tokenizer, sha)
    assert len(generated) == 6 and reframed.drift[0].prompt != first.drift[0].prompt
    assert drift.general_set(store, llama, tokenizer, sha) == reframed and len(generated) == 6
    spec["system"] = "You are terse."  # a new system message in the shipped prompts
    prompts.write_text(json.dumps(spec))
    drift.general_set(store, llama, tokenizer, sha)
    assert len(generated) == 8
