"""`hearth personalize eval`'s two paths agree: torch (the trainer's held-out metric, the fast default) and
llama.cpp (the chat's runtime), on the bundled model with a real adapter active in the encrypted store.

The adapter is real LoRA weights on every layer's q/v projections (random, large enough to move perplexity by
far more than the tolerance, so a path that ignored the adapter would fail), registered as the pipeline does:
GGUF for llama.cpp, the torch state and its LoRA shape for torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TEXT = (
    "Hearth keeps every document in an encrypted store on this computer. When you add a folder, it reads each "
    "file once, splits it into passages, and indexes them so the assistant can cite where an answer came from. "
    "Nothing leaves the machine unless you start a model download yourself. "
) * 12


def add_active_adapter(store: Any, rank: int = 4, alpha: float = 16.0) -> str:
    import numpy as np
    import torch

    from personalize import base, export_gguf
    from personalize.registry import AdapterRecord, Registry, new_id

    info = base.inspect(base.bundled_gguf())
    rng = np.random.default_rng(7)
    n_embd, kv_out = 576, info.n_head_kv * 64  # SmolLM2-135M: 9 heads, 3 KV heads of 64
    state = {}
    for layer in range(info.n_layer):
        for proj, out in (("q_proj", n_embd), ("v_proj", kv_out)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            a, b = rng.normal(0, 0.05, (rank, n_embd)), rng.normal(0, 0.05, (out, rank))
            state[f"{prefix}.lora_A.weight"] = torch.from_numpy(a.astype(np.float32))
            state[f"{prefix}.lora_B.weight"] = torch.from_numpy(b.astype(np.float32))
    record = AdapterRecord(
        new_id(),
        "2026-01-01T00:00:00Z",
        info.sha256,
        10.0,
        9.0,
        1000,
        10,
        config={"rank": rank, "alpha": alpha, "target_modules": ["q_proj", "v_proj"]},
    )
    registry = Registry(store)
    registry.add(export_gguf.to_gguf(state, alpha, info), state, record)
    registry.set_active(record.id)
    return record.id


def test_torch_and_llama_cpp_agree_on_base_and_adapter(store: Any, base_cache: Path, tmp_path: Path) -> None:
    from personalize import evaluate, export_gguf

    adapter_id = add_active_adapter(store)
    sample = tmp_path / "sample.txt"
    sample.write_text(TEXT)
    fast = evaluate.evaluate_files(store, [sample], window=128, threads=1)
    exact = evaluate.evaluate_files(store, [sample], window=128, runtime="llama.cpp", threads=1)
    assert fast["runtime"] == "torch" and exact["runtime"] == "llama.cpp"  # auto took torch: the base is converted
    assert fast["adapter"] == exact["adapter"] == adapter_id
    for key in ("base_ppl", "adapter_ppl"):
        assert fast[key] == pytest.approx(exact[key], rel=export_gguf.FIDELITY_TOLERANCE), key
    # The adapter is really applied on both paths: it moves perplexity by more than twice the tolerance.
    assert abs(exact["adapter_ppl"] / exact["base_ppl"] - 1) > 2 * export_gguf.FIDELITY_TOLERANCE


def test_torch_path_is_the_trainers_held_out_metric(store: Any, base_cache: Path, tmp_path: Path) -> None:
    """Same windows, same function: `eval` on a file equals `train.evaluate` on that file's token windows."""
    import torch

    from personalize import base, evaluate, train

    sample = tmp_path / "sample.txt"
    sample.write_text(TEXT)
    model, tokenizer = base.load(base.inspect(base.bundled_gguf()), torch.float32)
    ids = list(tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    expected = train.evaluate(model, [ids[i : i + 128] for i in range(0, len(ids), 128)])
    measured = evaluate.evaluate_files(store, [sample], window=128, threads=1)
    assert measured["base_ppl"] == pytest.approx(expected, rel=1e-6)
