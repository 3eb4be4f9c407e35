"""peft LoRA weights -> GGUF LoRA adapter bytes that llama.cpp loads, tagged with the base model's hash.

Written in memory (never to a plaintext file): the caller encrypts the bytes into a blob. Tensor names and
shapes follow llama.cpp's convert_lora_to_gguf.py: `blk.N.<tensor>.weight.lora_a` holds A as (rank, n_in)
and `.lora_b` holds B as (n_out, rank). Names and layout rules per architecture come from
personalize/architectures.py: for llama, llama.cpp stores q/k weights with their rows permuted for its RoPE
layout (convert_hf_to_gguf.py `LlamaModel.permute`) and transformers undoes that permutation when it loads a
GGUF, so B of q/k must be permuted back the same way, or the adapter would add its update to the wrong rows.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Mapping
from typing import Any

from personalize import architectures
from personalize.base import BaseInfo
from storage.errors import KnownError

BASE_KEY = "hearth.base_sha256"
# Held-out perplexity with the adapter may differ this much between torch and llama.cpp (quantized matmuls,
# f16 activations). A mapping error moves it by far more: tests/integration/test_architectures.py.
FIDELITY_TOLERANCE = 0.02
FORMAT_KEY = "hearth.adapter_format"
FORMAT_VERSION = 1

_PEFT_KEY = re.compile(r"layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])(?:\.\w+)?\.weight$")


def permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """llama.cpp's RoPE row permutation (LlamaModel.permute), applied to B's rows (numpy or torch)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def to_gguf(lora_state: Mapping[str, Any], alpha: float, base: BaseInfo, extra: Mapping[str, str] = {}) -> bytes:
    """Serialize a peft LoRA state dict (get_peft_model_state_dict form) as GGUF adapter bytes."""
    import numpy as np
    from gguf import GGUFType, GGUFWriter, Keys
    from gguf.gguf_writer import WriterState

    arch = architectures.get(base.architecture)
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in lora_state.items():
        match = _PEFT_KEY.search(key)
        if match is None or match.group(2) not in arch.tensors:
            raise KnownError(f"The adapter has a layer llama.cpp cannot apply ({key.rsplit('.', 3)[0]}).")
        layer, module, which = int(match.group(1)), match.group(2), match.group(3)
        name = f"blk.{layer}.{arch.tensors[module]}.weight"
        array = tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        if arch.rope_permuted and which == "B" and module == "self_attn.q_proj":
            array = permute(array, base.n_head, base.n_head)
        elif arch.rope_permuted and which == "B" and module == "self_attn.k_proj":
            array = permute(array, base.n_head, base.n_head_kv)
        pairs.setdefault(name, {})["lora_" + which.lower()] = np.ascontiguousarray(array, dtype=np.float32)
    if not pairs:
        raise KnownError("The adapter has no LoRA weights to export.")

    writer = GGUFWriter(path=None, arch=base.architecture)
    writer.add_type(GGUFType.ADAPTER)
    writer.add_string(Keys.Adapter.TYPE, "lora")
    writer.add_float32(Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_string(BASE_KEY, base.sha256)
    writer.add_uint32(FORMAT_KEY, FORMAT_VERSION)
    for key, value in extra.items():
        writer.add_string(key, value)
    for name in sorted(pairs, key=_tensor_order):
        tensors = pairs[name]
        if set(tensors) != {"lora_a", "lora_b"}:
            raise KnownError(f"The adapter is missing half of the LoRA pair for {name}.")
        writer.add_tensor(name + ".lora_a", tensors["lora_a"])
        writer.add_tensor(name + ".lora_b", tensors["lora_b"])

    # GGUFWriter writes tensor data with numpy's tofile, which needs a real file; a BytesIO keeps every
    # byte in memory, so the header parts go through the writer and the tensor data is written here.
    buffer = io.BytesIO()
    writer.fout = [buffer]  # type: ignore[list-item]
    writer.state = WriterState.EMPTY
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.write_padding(buffer, buffer.tell())
    for info in writer.tensors[0].values():
        assert info.tensor is not None
        buffer.write(info.tensor.tobytes())
        writer.write_padding(buffer, info.nbytes)
    return buffer.getvalue()


def fidelity_error(torch_ppl: float | None, llama_ppl: float) -> str | None:
    """Why an exported adapter must not be activated (llama.cpp disagrees with torch), or None if it agrees."""
    if torch_ppl is None or abs(llama_ppl / torch_ppl - 1) <= FIDELITY_TOLERANCE:
        return None
    return (
        f"The new adapter behaves differently in llama.cpp (held-out perplexity {llama_ppl:.2f}) than in training "
        f"({torch_ppl:.2f}); it was not activated and the current model stays."
    )


def _tensor_order(name: str) -> tuple[int, str]:
    parts = name.split(".")
    return int(parts[1]), parts[2]


def metadata(data: bytes) -> dict[str, Any]:
    """The scalar/string key-values of GGUF bytes (arrays skipped), parsed in memory; KnownError if garbled."""
    try:
        return _parse_kv(data)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as err:
        raise KnownError("The adapter file is corrupt (its GGUF header cannot be read).") from err


def check_adapter(data: bytes, base: BaseInfo) -> dict[str, Any]:
    """Refuse bytes that are not a Hearth LoRA adapter made for exactly this base model."""
    meta = metadata(data)
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise KnownError("This file is not a LoRA adapter.")
    if meta.get(BASE_KEY) != base.sha256:
        raise KnownError(
            "This adapter was trained for a different base model than the one the chat runs; "
            "personalize again for this model."
        )
    return meta


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def _parse_kv(data: bytes) -> dict[str, Any]:
    if data[:4] != b"GGUF":
        raise ValueError("not GGUF")
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    if version < 2 or n_kv > 10_000:
        raise ValueError("unsupported GGUF header")
    offset = 24
    out: dict[str, Any] = {}

    def read_string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", data, at)
        if at + 8 + length > len(data):
            raise ValueError("string past end")
        return data[at + 8 : at + 8 + length].decode("utf-8"), at + 8 + length

    def read_value(kind: int, at: int) -> tuple[Any, int]:
        if kind == 8:
            return read_string(at)
        if kind == 9:
            (item_kind, count) = struct.unpack_from("<IQ", data, at)
            at += 12
            for _ in range(count):
                _, at = read_value(item_kind, at)
            return None, at
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise ValueError("unknown GGUF value type")
        return struct.unpack_from(fmt, data, at)[0], at + struct.calcsize(fmt)

    for _ in range(n_kv):
        key, offset = read_string(offset)
        (kind,) = struct.unpack_from("<I", data, offset)
        value, offset = read_value(kind, offset + 4)
        if value is not None:
            out[key] = value
    return out
