"""The memory plan: the batch gives way before checkpointing does, and a run that cannot fit is refused with numbers."""

from __future__ import annotations

import pytest

from personalize import memory
from storage.errors import KnownError

GIB = memory.GIB
# Qwen2.5-1.5B's shape (151,936-token vocabulary, tied embeddings).
QWEN_1_5B = memory.Shape(
    n_params=1_543_714_304, hidden=1536, intermediate=8960, n_layer=28, vocab=151936, attn_width=1536, kv_width=256
)


def test_micro_batches_carry_at_most_micro_batch_tokens() -> None:
    """A CPU forward over 512 tokens is already efficient: larger ones would only multiply activations."""
    for seq_len, expected in ((512, 1), (256, 2), (128, 4), (64, 4)):
        plan = memory.plan(QWEN_1_5B, rank=16, seq_len=seq_len, batch_size=4, bf16=True, available=64 * GIB)
        assert (plan.micro_batch, plan.accumulation, plan.checkpointing) == (expected, 4 // expected, False)
        assert plan.micro_batch * seq_len <= memory.MICRO_BATCH_TOKENS


def test_smaller_micro_batches_then_checkpointing_as_memory_shrinks() -> None:
    plans = [
        memory.plan(QWEN_1_5B, rank=16, seq_len=128, batch_size=4, bf16=True, available=gib * GIB)
        for gib in (64, 7, 6, 5)
    ]
    assert [(p.micro_batch, p.checkpointing) for p in plans[:3]] == [(4, False), (2, False), (1, False)]
    assert plans[3].checkpointing  # only once not even one block fits without it
    assert all(p.micro_batch * p.accumulation == 4 for p in plans)
    assert all(p.peak_bytes <= 0.85 * p.available_bytes for p in plans)


def test_an_impossible_run_is_refused_with_the_numbers() -> None:
    with pytest.raises(KnownError, match=r"needs about \d+\.\d GiB of memory and only 2\.0 GiB is free"):
        memory.plan(QWEN_1_5B, rank=16, seq_len=512, batch_size=4, bf16=True, available=2 * GIB)


def test_bf16_base_halves_the_weights() -> None:
    fp32 = memory.peak_bytes(QWEN_1_5B, 16, 512, 1, bf16=False, checkpointing=True)
    bf16 = memory.peak_bytes(QWEN_1_5B, 16, 512, 1, bf16=True, checkpointing=True)
    assert fp32 - bf16 > 0.9 * 2 * QWEN_1_5B.n_params
