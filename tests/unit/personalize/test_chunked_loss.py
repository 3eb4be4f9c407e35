"""Chunked cross-entropy: the loss and the LoRA gradients equal the full-logits computation, softcap included."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = Path(__file__).parents[2] / "fixtures" / "tiny"


def full_nll(lm, ids, softcap: float):  # type: ignore[no-untyped-def]
    import torch

    logits = lm(input_ids=ids).logits[:, :-1].float() if not softcap else None
    if softcap:
        hidden = lm.model(input_ids=ids).last_hidden_state[:, :-1]
        logits = torch.tanh(lm.get_output_embeddings()(hidden).float() / softcap) * softcap
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"
    )


@pytest.mark.parametrize(("name", "softcap"), [("qwen2", 0.0), ("gemma3", 0.0), ("llama-3", 3.0)])
def test_chunked_nll_matches_full_logits_in_value_and_gradient(name: str, softcap: float) -> None:
    import torch

    from personalize import base, memory
    from personalize import train as trainer

    model, _ = base.load(base.inspect(TINY / f"{name}.gguf"))
    model.config.final_logit_softcapping = softcap or None
    peft_model = trainer.wrap_lora(model, trainer.TrainConfig(rank=4))
    for p in peft_model.parameters():  # LoRA B starts at zero: give it values so every gradient path is live
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    ids = torch.randint(3, 500, (2, 40), generator=torch.Generator().manual_seed(1))
    lora = [p for p in peft_model.parameters() if p.requires_grad]

    expected = full_nll(peft_model.get_base_model(), ids, softcap)
    expected_grads = torch.autograd.grad(expected, lora)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "LOGIT_CHUNK_BYTES", 4 * 512 * 7)  # 16-row chunks (the floor): several per batch
        nll, count = trainer.chunked_nll(peft_model, ids)
    grads = torch.autograd.grad(nll, lora)

    assert count == 2 * 39
    assert torch.allclose(nll, expected, rtol=1e-5), (nll, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max(), (name, (got - want).abs().max())
