"""A bf16 base trains its LoRA in bf16 without casts, but the optimizer keeps fp32 master weights.

The bf16 copies are what the forward sees; updates smaller than bf16's resolution must still accumulate in
the masters, and what leaves the trainer (checkpoints, the result's adapter) must be the fp32 masters.
"""

from __future__ import annotations

from pathlib import Path

TINY = Path(__file__).parents[2] / "fixtures" / "tiny"


def tiny(dtype):  # type: ignore[no-untyped-def]
    from personalize import base

    model, _ = base.load(base.inspect(TINY / "qwen2.gguf"), dtype)
    return model


def test_bf16_compute_copies_with_fp32_masters_keep_updates_bf16_would_round_away() -> None:
    import torch

    from personalize import train as trainer

    peft_model = trainer.wrap_lora(tiny(torch.bfloat16), trainer.TrainConfig(rank=4))
    for p in peft_model.parameters():  # LoRA B starts at zero: give it values so A's gradients are live
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    lora = trainer.LoraWeights(peft_model, bf16=True)
    assert {p.dtype for p in lora.params} == {torch.bfloat16}
    assert {m.dtype for m in lora.masters} == {torch.float32}
    ids = torch.randint(3, 500, (1, 32), generator=torch.Generator().manual_seed(0))
    nll, count = trainer.chunked_nll(peft_model, ids)
    (nll / count).backward()
    lora.accumulate_grads()
    assert all(p.grad is None for p in lora.params)  # moved into the masters, nothing left in bf16
    assert any(m.grad is not None and m.grad.abs().sum() > 0 for m in lora.masters)
    before = [m.detach().clone() for m in lora.masters]
    optimizer = torch.optim.SGD(lora.masters, lr=1e-6)  # updates far below bf16's 2^-8 relative step
    optimizer.step()
    lora.copy_from_masters()
    master_moved = torch.cat([(m != b).flatten() for m, b in zip(lora.masters, before, strict=True)])
    copy_moved = torch.cat([(p != b.to(p.dtype)).flatten() for p, b in zip(lora.params, before, strict=True)])
    assert master_moved.float().mean() > 0.8  # the fp32 masters keep most updates (some gradients are 0)...
    assert copy_moved.float().mean() < 0.1  # ...that bf16 weights, updated in place, would have rounded away
    with lora.fp32():
        assert {p.dtype for p in lora.params} == {torch.float32}
    assert {p.dtype for p in lora.params} == {torch.bfloat16}


def test_a_bf16_run_learns_like_the_fp32_run_and_hands_back_fp32_weights() -> None:
    import torch

    from personalize import train as trainer
    from personalize.dataset import Dataset

    blocks = torch.randint(3, 500, (8, 64), generator=torch.Generator().manual_seed(0)).tolist()
    cfg = {"seq_len": 64, "batch_size": 2, "max_steps": 8, "warmup_steps": 2, "threads": 1, "rank": 4}
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        checkpoints: list[bytes] = []
        data = Dataset(blocks=blocks, heldout=blocks[:2])
        run = trainer.train(tiny(dtype), data, trainer.TrainConfig(**cfg), save_checkpoint=checkpoints.append)
        results[dtype] = run
        saved = trainer.load_checkpoint(checkpoints[-1])["lora"]
        assert {v.dtype for v in saved.values()} == {torch.float32}
        assert {v.dtype for v in results[dtype].lora_state.values()} == {torch.float32}
    fp32, bf16 = results[torch.float32], results[torch.bfloat16]
    assert bf16.heldout_ppl is not None and fp32.heldout_ppl is not None
    assert abs(bf16.heldout_ppl / fp32.heldout_ppl - 1) < 0.02, (bf16.heldout_ppl, fp32.heldout_ppl)


def test_a_budgeted_run_shows_the_steps_its_budget_fits_from_the_first_step() -> None:
    """Not the data's step count first and the budget's later ("step 2/400", then "step 3/45")."""
    import torch

    from personalize import train as trainer
    from personalize.dataset import Dataset

    blocks = torch.randint(3, 500, (4000, 16), generator=torch.Generator().manual_seed(0)).tolist()
    cfg = trainer.TrainConfig(seq_len=16, batch_size=1, warmup_steps=3, threads=1, rank=4, max_minutes=0.03)
    shown: list[int] = []
    result = trainer.train(
        tiny(torch.float32), Dataset(blocks=blocks, heldout=[]), cfg, lambda p: shown.append(p.max_steps)
    )
    assert result.max_steps < 4000 * cfg.epochs  # the budget, not the data, ended the run
    assert max(shown) <= 3 * result.max_steps, shown[:5]
    assert all(total == result.max_steps for total in shown[cfg.warmup_steps - 1 :])
