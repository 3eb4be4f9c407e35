"""Per-architecture rules for the GGUF -> torch -> LoRA -> GGUF-adapter round trip, in one table.

A LoRA trained in torch only helps the chat if llama.cpp adds each update to the same rows torch did. Three
parties decide the layouts: llama.cpp's convert_hf_to_gguf.py (how a checkpoint became the GGUF), llama.cpp's
graph (how it runs it), and transformers' GGUF loader (how `base.load` gets torch weights back). Where the
loader gets something wrong or leaves it out, a `fix_config`/`fix_model` rule here puts back what llama.cpp
runs; where the converter changed a layout, `rope_permuted` tells the exporter to redo it on the adapter.

| arch   | LoRA targets (HF -> GGUF)                    | layout rules                                             |
| ------ | -------------------------------------------- | -------------------------------------------------------- |
| llama  | q,k,v,o -> attn_q/k/v/output;                | q/k rows permuted for llama.cpp's interleaved RoPE: the  |
|        | gate,up,down -> ffn_gate/up/down             | loader un-permutes, the exporter permutes B back.        |
|        |                                              | Llama 3.x's rope scaling lives in a `rope_freqs` tensor  |
|        |                                              | the loader ignores: divided into torch's inv_freq here.  |
|        |                                              | Embeddings tied iff the GGUF has no `output` (SmolLM2).  |
| qwen2  | as llama                                     | NEOX RoPE: no permutation. q/k/v biases stay frozen.     |
| qwen3  | as llama                                     | NEOX RoPE; q/k norms frozen; head_dim is explicit        |
|        |                                              | (attention.key_length), which the loader leaves out.     |
| gemma3 | as llama                                     | NEOX RoPE; norms stored as w+1 (the loader subtracts 1); |
|        |                                              | tied embeddings; attention scale 1/sqrt(head_dim) as     |
|        |                                              | llama.cpp runs it (the loader keeps the 256 default);    |
|        |                                              | local layers' RoPE base from rope.freq_base_swa.         |
| phi3   | qkv -> attn_qkv (fused, q|k|v rows);         | NEOX RoPE; fused tensors keep HF's row order, so the     |
|        | gate_up -> ffn_up (fused, gate|up rows);     | adapter maps 1:1; partial rotary from                    |
|        | o -> attn_output; down -> ffn_down           | rope.dimension_count, which the loader leaves out.       |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from storage.errors import KnownError

Fields = Mapping[str, Any]  # the GGUF's scalar metadata


def _no_fix(config: Any, fields: Fields) -> None:
    return None


def _no_model_fix(model: Any, extra: Mapping[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Architecture:
    gguf: str  # llama.cpp's general.architecture
    hf_model_type: str  # transformers' config.model_type once loaded from the GGUF
    tensors: Mapping[str, str]  # HF module path inside a layer -> llama.cpp tensor name inside blk.N
    rope_permuted: bool = False  # llama.cpp stores q/k rows permuted (convert_hf_to_gguf LlamaModel.permute)
    fix_config: Callable[[Any, Fields], None] = _no_fix  # put back what transformers' loader leaves out
    fix_model: Callable[[Any, Mapping[str, Any]], None] = _no_model_fix  # same, for non-persistent buffers
    extra_tensors: tuple[str, ...] = ()  # small GGUF tensors fix_model needs (read at load time)

    @property
    def targets(self) -> tuple[str, ...]:
        """peft target_modules: every linear layer llama.cpp can apply a LoRA to."""
        return tuple(module.rsplit(".", 1)[1] for module in self.tensors)


_SPLIT = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_FUSED = {
    "self_attn.qkv_proj": "attn_qkv",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _llama_rope_freqs(model: Any, extra: Mapping[str, Any]) -> None:
    """llama.cpp divides each RoPE frequency by `rope_freqs` (Llama 3.x scaling); do the same in torch."""
    factors = extra.get("rope_freqs.weight")
    if factors is None:
        return
    import torch

    rotary = model.model.rotary_emb
    scaled = rotary.inv_freq / torch.as_tensor(factors, dtype=rotary.inv_freq.dtype)
    rotary.inv_freq = scaled
    rotary.original_inv_freq = scaled


def _head_dim(config: Any, fields: Fields) -> None:
    key_length = fields.get(f"{config.model_type}.attention.key_length")
    if key_length:
        config.head_dim = int(key_length)


def _gemma3(config: Any, fields: Fields) -> None:
    # llama.cpp scales queries by 1/sqrt(head_dim) for every Gemma 3 size but 27B (outside our 0.3-4B range).
    config.query_pre_attn_scalar = config.head_dim
    local_base = fields.get("gemma3.rope.freq_base_swa")
    if local_base and isinstance(getattr(config, "rope_parameters", None), dict):
        config.rope_parameters.setdefault("sliding_attention", {"rope_type": "default"})
        config.rope_parameters["sliding_attention"]["rope_theta"] = float(local_base)


def _phi3(config: Any, fields: Fields) -> None:
    rotary_dims = fields.get("phi3.rope.dimension_count")
    head_dim = config.hidden_size // config.num_attention_heads
    if rotary_dims and rotary_dims != head_dim:
        config.rope_parameters["partial_rotary_factor"] = rotary_dims / head_dim


ARCHITECTURES: dict[str, Architecture] = {
    arch.gguf: arch
    for arch in (
        Architecture(
            "llama",
            "llama",
            _SPLIT,
            rope_permuted=True,
            fix_model=_llama_rope_freqs,
            extra_tensors=("rope_freqs.weight",),
        ),
        Architecture("qwen2", "qwen2", _SPLIT),
        Architecture("qwen3", "qwen3", _SPLIT, fix_config=_head_dim),
        Architecture("gemma3", "gemma3_text", _SPLIT, fix_config=_gemma3),
        Architecture("phi3", "phi3", _FUSED, fix_config=_phi3),
    )
}


def get(gguf_arch: str) -> Architecture:
    """The rules for a GGUF architecture; KnownError naming the supported ones otherwise."""
    try:
        return ARCHITECTURES[gguf_arch]
    except KeyError:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise KnownError(
            f"Personalization does not support the '{gguf_arch}' model architecture yet (supported: {supported})."
        ) from None


def for_model(model: Any) -> Architecture:
    """The rules for a loaded transformers model (by its config.model_type)."""
    model_type = model.config.model_type
    for arch in ARCHITECTURES.values():
        if arch.hf_model_type == model_type:
            return arch
    raise KnownError(f"Personalization does not support '{model_type}' models.")
