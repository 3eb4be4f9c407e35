"""Will a model fit in memory? Estimated from its GGUF header before anything is loaded.

Loading a model that does not fit does not fail: the OS swaps the laptop to a halt. So the engine compares
weights + KV cache + compute buffers at the chosen context with the memory available now, and refuses with
numbers ("needs about 5.1 GB, 3.2 GB free") instead. The estimate follows llama.cpp's CPU layout:
- weights: the file's tensor data, mapped from disk and all touched while generating;
- KV cache: per layer, n_ctx x (n_head_kv x head_dim) for keys and again for values, f16 (2 bytes);
- buffers: the compute graph, dominated by the output layer's logits for one 512-token batch (n_vocab
  floats per token: 262 MB for Llama-3-8B, whose llama.cpp log reports a 258 MiB compute buffer), plus
  ~32 MiB for the runtime itself.
Measured against the RSS a real load adds (tests/integration/test_model_fit.py), it errs a little high.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop.engine.gguf_file import GGUFInfo
from storage.errors import KnownError

DEFAULT_N_CTX = 4096
N_BATCH = 512
RUNTIME_OVERHEAD = 32 << 20


@dataclass(frozen=True)
class RamEstimate:
    weights: int
    kv_cache: int
    buffers: int
    n_ctx: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.buffers


def estimate_ram(info: GGUFInfo, n_ctx: int = DEFAULT_N_CTX) -> RamEstimate:
    meta, arch = info.metadata, info.architecture
    n_ctx = min(n_ctx, info.context_length or n_ctx)
    n_layer = _int(meta.get(f"{arch}.block_count"), 0)
    n_embd = _int(meta.get(f"{arch}.embedding_length"), 0)
    n_head = _int(meta.get(f"{arch}.attention.head_count"), 1) or 1
    n_head_kv = _int(meta.get(f"{arch}.attention.head_count_kv"), n_head)
    key_len = _int(meta.get(f"{arch}.attention.key_length"), n_embd // n_head)
    value_len = _int(meta.get(f"{arch}.attention.value_length"), key_len)
    n_vocab = _int(meta.get(f"{arch}.vocab_size"), 0) or _array_len(meta.get("tokenizer.ggml.tokens"))
    kv = n_layer * n_ctx * n_head_kv * (key_len + value_len) * 2
    buffers = n_vocab * N_BATCH * 4 + RUNTIME_OVERHEAD
    return RamEstimate(weights=info.size_bytes, kv_cache=kv, buffers=buffers, n_ctx=n_ctx)


def available_memory() -> int:
    """Bytes that can be used without swapping: the OS's available memory, capped by a cgroup limit if any."""
    import psutil

    available = int(psutil.virtual_memory().available)
    limit = _cgroup_room()
    return min(available, limit) if limit is not None else available


def check_fits(info: GGUFInfo, n_ctx: int, available: int | None = None) -> RamEstimate:
    """Raise KnownError, with the numbers, when the model would not fit in the memory available now."""
    estimate = estimate_ram(info, n_ctx)
    free = available_memory() if available is None else available
    if estimate.total > free:
        raise KnownError(
            f"{info.path.name} needs about {gb(estimate.total)} of memory at a {estimate.n_ctx}-token context, "
            f"{gb(free)} free; close other programs or choose a smaller model (hearth models scan)"
        )
    return estimate


def gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), where a container or systemd limits it."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text()))
    except (OSError, IndexError, ValueError):
        return None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _array_len(value: object) -> int:
    """gguf_file records arrays as '<array of N>' (their items are skipped, not decoded)."""
    if isinstance(value, str) and value.startswith("<array of "):
        return int(value.removeprefix("<array of ").rstrip(">"))
    return 0
