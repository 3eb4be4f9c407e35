"""The forgetting guard end to end: real training, real export, drift measured in llama.cpp on the base's own
answers to the shipped general prompts. A run deliberately over-trained on narrow text (high constant learning
rate, no replay) is refused and stays inactive. (The activated side is test_personalize_store.py's pipeline
test, whose state must match its drift against the limit.)

Margins, not exact values: the base's greedy answers differ between CPUs, so each run must clear the limit by
a wide margin on either side (measured on this machine: README, "Forgetting guard").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SMALL = {"seq_len": 64, "batch_size": 2, "warmup_steps": 2, "threads": 1}


def chats(store: Any, documents: list[tuple[str, str]]) -> None:
    for doc_id, text in documents:
        conversation = store.chats.create(title=doc_id)
        store.chats.add_message(conversation, "user", f"Write the {doc_id} entries.")
        store.chats.add_message(conversation, "assistant", text)


def test_an_overtrained_adapter_is_refused_and_stays_inactive(
    store: Any, base_cache: Path, general_cached: None, ledger_documents: list[tuple[str, str]]
) -> None:
    """Measured here: drift 21,547x for this run (limit 1.10), so the margin does not hinge on one CPU."""
    from personalize import drift, pipeline, proof, registry
    from personalize.train import TrainConfig

    chats(store, ledger_documents)
    reg = registry.Registry(store)
    overtrained = pipeline.run(store, TrainConfig(**SMALL, lr=1e-2, min_lr=1e-2, max_steps=30), replay_fraction=0.0)
    assert overtrained.state == "refused", overtrained
    assert overtrained.drift is not None and overtrained.drift > 10 * drift.DRIFT_LIMIT
    assert reg.active() is None  # nothing was switched to
    record = reg.get(overtrained.adapter_id)
    assert record.refused and "general answers" in record.refused
    shown = proof.version(record)
    assert shown["drift"] == overtrained.drift and any("drifted" in w for w in shown["warnings"])
    assert record.general_adapter_ppl > record.general_base_ppl
    assert len(record.samples) == 3
