"""The forgetting guard end to end: real training, real export, drift measured in llama.cpp on the base's own
answers to the shipped general prompts. A normal run is activated; a run deliberately over-trained on narrow
text (high constant learning rate, many epochs, no replay) is refused and stays inactive.

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


def test_a_normal_run_is_activated_and_an_overtrained_one_refused(
    store: Any, base_cache: Path, general_cached: None, ledger_documents: list[tuple[str, str]]
) -> None:
    from personalize import drift, pipeline, proof, registry
    from personalize.train import TrainConfig

    chats(store, ledger_documents)
    reg = registry.Registry(store)
    normal = pipeline.run(store, TrainConfig(**SMALL, lr=1e-3, max_steps=10))
    assert normal.state == "activated", normal
    assert normal.drift is not None and normal.drift < drift.DRIFT_LIMIT
    assert normal.adapter_ppl < normal.base_ppl
    reg.set_active(None)  # the over-trained run starts from the base, not from this adapter

    overtrained = pipeline.run(store, TrainConfig(**SMALL, lr=1e-2, min_lr=1e-2, max_steps=30), replay_fraction=0.0)
    assert overtrained.state == "refused", overtrained
    assert overtrained.drift is not None and overtrained.drift > 2 * drift.DRIFT_LIMIT  # measured: 20x
    assert reg.active() is None  # nothing was switched to
    record = reg.get(overtrained.adapter_id)
    assert record.refused and "general answers" in record.refused
    shown = proof.version(record)
    assert shown["drift"] == overtrained.drift and any("drifted" in w for w in shown["warnings"])
    assert record.general_adapter_ppl > record.general_base_ppl
