"""The trainer's pure parts: learning-rate schedule and the deterministic data order resume relies on."""

from __future__ import annotations

import pytest

from personalize.dataset import Dataset
from personalize.train import TrainConfig, batch_at, lr_at


def test_lr_warms_up_linearly_then_decays_to_min() -> None:
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=4, max_steps=20)
    assert lr_at(0, cfg) == pytest.approx(2.5e-4)
    assert lr_at(3, cfg) == pytest.approx(1e-3)
    assert lr_at(4, cfg) == pytest.approx(1e-3)
    values = [lr_at(s, cfg) for s in range(4, 21)]
    assert values == sorted(values, reverse=True)
    assert lr_at(20, cfg) == pytest.approx(1e-4)
    assert lr_at(500, cfg) == pytest.approx(1e-4)


def test_batches_cover_every_block_once_per_epoch_and_replay_identically() -> None:
    data = Dataset(blocks=[[i] * 4 for i in range(10)], heldout=[])
    cfg = TrainConfig(batch_size=2, seed=7)
    epoch = [b[0] for s in range(5) for b in batch_at(s, data, cfg)]
    assert sorted(epoch) == list(range(10))
    again = [b[0] for s in range(5) for b in batch_at(s, data, cfg)]
    assert epoch == again
    next_epoch = [b[0] for s in range(5, 10) for b in batch_at(s, data, cfg)]
    assert sorted(next_epoch) == list(range(10)) and next_epoch != epoch
