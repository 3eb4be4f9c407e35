"""GGUF adapter export: llama.cpp's q/k permutation, metadata in memory, refusal of foreign or corrupt bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personalize import export_gguf
from personalize.base import BaseInfo
from storage.errors import KnownError

BASE = BaseInfo(path=Path("m.gguf"), sha256="ab" * 32, architecture="llama", n_head=4, n_head_kv=2, n_layer=1)


def hf_unpermute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """transformers' GGUF loader inverse (reverse_permute_weights in integrations/ggml.py)."""
    if n_head != n_head_kv:
        n_head = n_head_kv
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def test_permute_inverts_transformers_unpermute() -> None:
    w = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
    assert np.array_equal(export_gguf.permute(hf_unpermute(w, 4, 4), 4, 4), w)
    assert np.array_equal(export_gguf.permute(hf_unpermute(w, 4, 2), 4, 2), w)


def lora_state(rank: int = 2) -> dict[str, object]:
    import torch

    gen = torch.Generator().manual_seed(0)
    state = {}
    shapes = {"self_attn.q_proj": (16, 16), "self_attn.k_proj": (8, 16), "mlp.down_proj": (16, 32)}
    for module, (n_out, n_in) in shapes.items():
        prefix = f"base_model.model.model.layers.0.{module}"
        state[f"{prefix}.lora_A.weight"] = torch.randn(rank, n_in, generator=gen)
        state[f"{prefix}.lora_B.weight"] = torch.randn(n_out, rank, generator=gen)
    return state


def test_export_writes_llama_cpp_names_shapes_and_tags() -> None:
    from gguf import GGUFReader

    state = lora_state()
    data = export_gguf.to_gguf(state, alpha=4.0, base=BASE)
    meta = export_gguf.metadata(data)
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 4.0 and meta["general.architecture"] == "llama"
    assert meta[export_gguf.BASE_KEY] == BASE.sha256
    # The reader needs a file: this test's bytes are random numbers, not user data.
    path = Path(__import__("tempfile").mkdtemp()) / "a.gguf"
    path.write_bytes(data)
    tensors = {t.name: t for t in GGUFReader(str(path)).tensors}
    assert set(tensors) == {f"blk.0.{n}.weight.lora_{ab}" for n in ("attn_q", "attn_k", "ffn_down") for ab in "ab"}
    q_b = np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data).reshape(16, 2)
    expected = export_gguf.permute(
        state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy(), 4, 4
    )
    assert np.allclose(q_b, expected)
    k_b = np.asarray(tensors["blk.0.attn_k.weight.lora_b"].data).reshape(8, 2)
    expected_k = export_gguf.permute(
        state["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"].numpy(), 4, 2
    )
    assert np.allclose(k_b, expected_k)
    down_a = np.asarray(tensors["blk.0.ffn_down.weight.lora_a"].data).reshape(2, 32)
    assert np.allclose(down_a, state["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"].numpy())


def test_adapter_for_another_base_is_refused() -> None:
    data = export_gguf.to_gguf(lora_state(), alpha=4.0, base=BASE)
    other = BaseInfo(**{**BASE.__dict__, "sha256": "cd" * 32})
    with pytest.raises(KnownError, match="different base model"):
        export_gguf.check_adapter(data, other)
    assert export_gguf.check_adapter(data, BASE)["adapter.type"] == "lora"


@pytest.mark.parametrize("cut", [3, 30, 100])
def test_truncated_or_garbage_bytes_are_a_known_error(cut: int) -> None:
    data = export_gguf.to_gguf(lora_state(), alpha=4.0, base=BASE)
    with pytest.raises(KnownError, match="corrupt"):
        export_gguf.metadata(data[:cut])
    with pytest.raises(KnownError, match="corrupt"):
        export_gguf.metadata(b"\x00" * cut)


def test_unknown_layer_is_refused() -> None:
    import torch

    with pytest.raises(KnownError, match="cannot apply"):
        export_gguf.to_gguf({"model.embed_tokens.lora_A.weight": torch.zeros(2, 2)}, 4.0, BASE)
