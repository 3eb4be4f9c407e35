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
    pointer, from_memory = None, False
    with contextlib.suppress(OSError, AttributeError), _memory_file(data) as stream, quiet_llama_log():
        pointer, from_memory = llama_cpp.llama_adapter_lora_init_from_file_ptr(llama.model, stream), True
    if from_memory and not pointer:
        raise KnownError("The adapter is corrupt and was not loaded.")
    if not from_memory:  # no fmemopen here: fall back to a memfd-style path from the store
        if plaintext_path is None:
            raise KnownError("This platform cannot load an adapter from memory.")
        with plaintext_path(data) as path, quiet_llama_log():
            pointer = llama_cpp.llama_adapter_lora_init(llama.model, str(path).encode())
        if not pointer:
            raise KnownError("The adapter is corrupt and was not loaded.")
    return AdapterHandle(pointer=pointer, meta=meta)


@contextlib.contextmanager
def quiet_llama_log() -> Iterator[None]:
    """llama.cpp writes some notes straight to fd 2 whatever `verbose` says (an adapter loaded into a repacked
    Q4_K model: "lora for 'blk.0…' cannot use buft 'CPU_REPACK', fallback to CPU"; Gemma 3's "using full-size
    SWA cache"), over the CLI's status line; failures still return NULL or raise. Without descriptors 1 and 2
    (a windowed app) there is nothing to keep clean."""
    from llama_cpp._utils import suppress_stdout_stderr

    quiet = suppress_stdout_stderr(disable=False)
    try:
        quiet.__enter__()  # type: ignore[no-untyped-call]
    except OSError:
        yield
        return
    try:
        yield
    finally:
        quiet.__exit__()  # type: ignore[no-untyped-call]


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

    Windows longer than n_batch/n_ctx are cut into pieces.
    """
    limit = min(llama.n_batch, llama.n_ctx())
    total_nll, count = 0.0, 0
    try:
        for window in windows:
            for start in range(0, len(window), limit):
                nll, n = sequence_nll(llama, window[start : start + limit])
                total_nll, count = total_nll + nll, count + n
    finally:
        reset_cache(llama)
    if count == 0:
        raise KnownError("The text is too short to measure perplexity.")
    return math.exp(total_nll / count)


def sequence_nll(llama: Any, ids: Sequence[int], score_from: int = 1) -> tuple[float, int]:
    """Summed next-token NLL of ids[score_from:] given everything before, in one decode from an empty cache.

    One batch with logits for every position (llama.cpp's batched prompt processing; works whether or not the
    Llama was built with logits_all). The log-softmax stays in float32 over a view of llama.cpp's logits:
    copying 512 x 49k logits to float64 first took as long as the decode itself.
    """
    import numpy as np

    ids = list(ids)
    if len(ids) < 2 or score_from >= len(ids):
        return 0.0, 0
    if len(ids) > min(llama.n_batch, llama.n_ctx()):
        raise ValueError("sequence longer than the batch")
    reset_cache(llama)
    llama._batch.set_batch(batch=ids, n_past=0, logits_all=True)  # private API, see docstring
    llama._ctx.decode(llama._batch)
    n_vocab = llama.n_vocab()
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(ids) * n_vocab,)).reshape(len(ids), n_vocab)
    rows = logits[max(score_from - 1, 0) : -1]
    targets = np.asarray(ids[max(score_from, 1) :])
    top = rows.max(axis=1)
    shifted = rows - top[:, None]  # the one float32 temporary
    np.exp(shifted, out=shifted)
    log_z = top.astype(np.float64) + np.log(shifted.sum(axis=1, dtype=np.float64))
    picked = rows[np.arange(len(targets)), targets].astype(np.float64)
    return float((log_z - picked).sum()), len(targets)


def complete(llama: Any, prompt: Sequence[int], max_tokens: int) -> list[int]:
    """Greedy continuation of `prompt` (token ids) until an end-of-generation token or `max_tokens`.

    The end token, when produced, is included. Greedy so that a comparison (base vs adapter) shows the
    models' own most likely text, not sampling noise.
    """
    import llama_cpp

    out: list[int] = []
    try:
        for token in llama.generate(list(prompt), top_k=1, top_p=1.0, min_p=0.0, temp=0.0, reset=True):
            out.append(int(token))
            if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token) or len(out) >= max_tokens:
                break
    finally:
        reset_cache(llama)
    return out


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
