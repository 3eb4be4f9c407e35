"""A LoRA on the top layers only: backward stops at the lowest adapted layer, and continuing keeps every layer.

The speed of `TrainConfig.layer_fraction` rests on autograd recording nothing below the lowest adapted layer
(nothing there needs a gradient). If anything below required grad (an input made to require it, a frozen
weight left trainable), backward would run through every layer again and only these tests would notice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY = Path(__file__).parents[2] / "fixtures" / "tiny"


def layer_outputs_needing_grad(fraction: float) -> list[bool]:
    """Per decoder layer of the 6-layer tiny Gemma 3: does its output carry an autograd graph?"""
    import torch

    from personalize import base
    from personalize import train as trainer

    model, _ = base.load(base.inspect(TINY / "gemma3.gguf"))
    peft_model = trainer.wrap_lora(model, trainer.TrainConfig(rank=4, layer_fraction=fraction))
    seen: dict[int, bool] = {}

    def record(index: int) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            seen[index] = (out[0] if isinstance(out, tuple) else out).requires_grad

        return hook

    hooks = [layer.register_forward_hook(record(i)) for i, layer in enumerate(model.model.layers)]
    ids = torch.randint(3, 500, (1, 24), generator=torch.Generator().manual_seed(0))
    nll, count = trainer.chunked_nll(peft_model, ids)
    (nll / count).backward()
    for hook in hooks:
        hook.remove()
    lora = {name: p for name, p in peft_model.named_parameters() if p.requires_grad}
    assert lora and all(p.grad is not None for p in lora.values())  # every adapted layer still learns
    adapted = sorted({int(name.split(".layers.")[1].split(".")[0]) for name in lora})
    assert adapted == trainer.adapted_layers(len(model.model.layers), trainer.TrainConfig(layer_fraction=fraction))
    return [seen[i] for i in range(len(model.model.layers))]


def test_backward_stops_at_the_lowest_adapted_layer() -> None:
    # Top third of 6 layers: 4 and 5. Layer 4's output needs grad (its own LoRA); nothing below it does.
    assert layer_outputs_needing_grad(1 / 3) == [False, False, False, False, True, True]


def test_with_every_layer_adapted_backward_runs_through_all() -> None:
    assert layer_outputs_needing_grad(1.0) == [True] * 6  # the control: the hooks do see a graph when there is one


def test_top_layers_count_from_the_top_and_continuing_keeps_an_adapters_layers() -> None:
    from personalize.train import TrainConfig, adapted_layers

    assert adapted_layers(30, TrainConfig()) == list(range(30))
    assert adapted_layers(30, TrainConfig(layer_fraction=1 / 3)) == list(range(20, 30))
    assert adapted_layers(30, TrainConfig(layer_fraction=0.01)) == [29]  # at least one layer
    parent = {"base_model.model.model.layers.3.mlp.up_proj.lora_A.weight": None}
    assert adapted_layers(30, TrainConfig(layer_fraction=0.1), parent) == [3, 27, 28, 29]
    with pytest.raises(ValueError, match="layer_fraction"):
        adapted_layers(30, TrainConfig(layer_fraction=0.0))


def test_the_memory_estimate_keeps_activations_of_adapted_layers_only() -> None:
    from personalize import memory
    from personalize.train import TrainConfig, memory_plan

    shape = memory.Shape(
        n_params=134_515_008, hidden=576, intermediate=1536, n_layer=30, vocab=49152, attn_width=576, kv_width=192
    )
    full = memory_plan(shape, TrainConfig(micro_batch=1, bf16="on"))
    third = memory_plan(shape, TrainConfig(micro_batch=1, bf16="on", layer_fraction=1 / 3))
    per_layer = memory.activation_bytes_per_token_layer(shape, bf16=True) * 512
    adapter = memory.lora_params(shape, 16, 1) * 16
    assert full.peak_bytes - third.peak_bytes == (per_layer + adapter) * 20  # 20 frozen layers keep nothing


def test_continuing_an_every_layer_adapter_on_the_top_layers_keeps_all_of_it() -> None:
    import torch

    from personalize import base
    from personalize import train as trainer

    def wrapped(fraction: float, state: dict[str, Any] | None = None) -> Any:
        model, _ = base.load(base.inspect(TINY / "gemma3.gguf"))
        return trainer.wrap_lora(model, trainer.TrainConfig(rank=4, layer_fraction=fraction), state)

    parent = trainer.lora_state_dict(wrapped(1.0))
    for value in parent.values():
        torch.nn.init.normal_(value, std=0.05)
    continued = trainer.lora_state_dict(wrapped(1 / 3, parent))
    assert continued.keys() == parent.keys()  # no layer's LoRA dropped
    assert all(torch.equal(continued[k], parent[k]) for k in parent)  # and every weight loaded
