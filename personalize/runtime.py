"""LoRA adapters in a live llama.cpp model: load from bytes, hot-swap, free, and measure perplexity.

The chat engine calls these with its `llama_cpp.Llama`. Adapters are loaded from memory through
`llama_adapter_lora_init_from_file_ptr` on an `fmemopen` stream, so the decrypted adapter never exists as a
file; where libc has no fmemopen, a `plaintext_path` context manager (the store's memfd) is used instead.
Swapping uses `llama_set_adapters_lora` on the existing context (no model reload; `Llama(lora_path=...)`
would also disable mmap). The KV cache and llama-cpp-python's prefix cache are reset on every swap: cached
keys/values computed under the old weights would otherwise leak the old behaviour into the next reply.

Not thread-safe, like the llama context itself: call from the thread that owns the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personalize import export_gguf
from storage.errors import KnownError


@dataclass
class AdapterHandle:
    """A LoRA loaded into one model. Valid until freed or until the model is freed."""

    pointer: Any
    meta: dict[str, Any] = field(default_factory=dict)
    freed: bool = False


def load_adapter(
    llama: Any,
    data: bytes,
    base_sha256: str | None = None,
    plaintext_path: Callable[[bytes], contextlib.AbstractContextManager[Path]] | None = None,
) -> AdapterHandle:
    """Load GGUF adapter bytes into `llama`'s model; KnownError if corrupt or made for another base model."""
    import llama_cpp

    meta = export_gguf.metadata(data)
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise KnownError("This file is not a LoRA adapter.")
    if base_sha256 is not None and meta.get(export_gguf.BASE_KEY) != base_sha256:
        raise KnownError(
            "This adapter was trained for a different base model than the one the chat runs; "
            "personalize again for this model."
        )
    pointer = None
    with contextlib.suppress(OSError, AttributeError), _memory_file(data) as stream:
        pointer = llama_cpp.llama_adapter_lora_init_from_file_ptr(llama.model, stream)
        if not pointer:
            raise KnownError("The adapter is corrupt and was not loaded.")
    if pointer is None:  # no fmemopen here: fall back to a memfd-style path from the store
        if plaintext_path is None:
            raise KnownError("This platform cannot load an adapter from memory.")
        with plaintext_path(data) as path:
            pointer = llama_cpp.llama_adapter_lora_init(llama.model, str(path).encode())
        if not pointer:
            raise KnownError("The adapter is corrupt and was not loaded.")
    return AdapterHandle(pointer=pointer, meta=meta)


def load_adapter_file(llama: Any, path: Path, base_sha256: str | None = None) -> AdapterHandle:
    """Load an adapter from a GGUF file the user points at (not Hearth's encrypted ones)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise KnownError(f"Cannot read adapter file {Path(path).name}.") from err
    return load_adapter(llama, data, base_sha256)


def activate(llama: Any, handle: AdapterHandle | None, scale: float = 1.0) -> None:
    """Make `handle` the only adapter on the context (None: base model), then reset cached state."""
    import llama_cpp

    if handle is None:
        result = llama_cpp.llama_set_adapters_lora(llama.ctx, None, 0, None)
    else:
        if handle.freed:
            raise ValueError("adapter handle was freed")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle.pointer)
        scales = (ctypes.c_float * 1)(scale)
        result = llama_cpp.llama_set_adapters_lora(llama.ctx, adapters, 1, scales)
    if result != 0:
        raise KnownError("llama.cpp refused to apply the adapter to this model.")
    reset_cache(llama)


def free(llama: Any, handle: AdapterHandle) -> None:
    """Free an adapter; it must not be active (activate another or None first)."""
    import llama_cpp

    if not handle.freed:
        llama_cpp.llama_adapter_lora_free(handle.pointer)
        handle.freed = True


def reset_cache(llama: Any) -> None:
    """Drop the KV cache and llama-cpp-python's prefix-reuse bookkeeping."""
    import llama_cpp

    memory = llama_cpp.llama_get_memory(llama.ctx)
    if memory is not None:
        llama_cpp.llama_memory_clear(memory, True)
    llama.reset()


def perplexity_tokens(llama: Any, windows: Sequence[Sequence[int]]) -> float:
    """exp(mean next-token NLL) over token windows, each evaluated from an empty cache, in llama.cpp.

    Uses the Llama's own batch with logits requested for every position (works whether or not the Llama
    was built with logits_all). Windows longer than n_batch/n_ctx are cut into pieces.
    """
    import numpy as np

    limit = min(llama.n_batch, llama.n_ctx())
    n_vocab = llama.n_vocab()
    total_nll, count = 0.0, 0
    try:
        for window in windows:
            for start in range(0, len(window), limit):
                piece = list(window[start : start + limit])
                if len(piece) < 2:
                    continue
                reset_cache(llama)
                llama._batch.set_batch(batch=piece, n_past=0, logits_all=True)  # private API, see docstring
                llama._ctx.decode(llama._batch)
                logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(piece) * n_vocab,))
                logits = logits.reshape(len(piece), n_vocab)[:-1]
                targets = np.asarray(piece[1:])
                # In row chunks: a float64 copy of 512 x 262k logits (Gemma 3) would be a gigabyte.
                for row in range(0, len(targets), 32):
                    chunk = logits[row : row + 32].astype(np.float64)
                    top = chunk.max(axis=1, keepdims=True)
                    log_z = top[:, 0] + np.log(np.exp(chunk - top).sum(axis=1))
                    picked = chunk[np.arange(len(chunk)), targets[row : row + 32]]
                    total_nll += float((log_z - picked).sum())
                count += len(targets)
    finally:
        reset_cache(llama)
    if count == 0:
        raise KnownError("The text is too short to measure perplexity.")
    return math.exp(total_nll / count)


def perplexity(llama: Any, texts: Sequence[str], window: int = 512) -> float:
    """Perplexity of plain texts, tokenized by llama.cpp itself, in windows of `window` tokens."""
    windows: list[list[int]] = []
    for text in texts:
        ids = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        windows.extend(ids[i : i + window] for i in range(0, len(ids), window))
    return perplexity_tokens(llama, [w for w in windows if len(w) >= 2])


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[Any]:
    """A read-only C FILE* over a copy of `data` in memory (fmemopen); the copy is zeroed afterwards."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    fmemopen = libc.fmemopen  # AttributeError where libc lacks it (Windows)
    fmemopen.restype = ctypes.c_void_p
    fmemopen.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    buffer = ctypes.create_string_buffer(data, len(data))
    stream = fmemopen(buffer, len(data), b"rb")
    if not stream:
        raise OSError("fmemopen failed")
    try:
        yield stream
    finally:
        libc.fclose(stream)
        ctypes.memset(buffer, 0, len(data))
