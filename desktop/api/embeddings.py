"""`/v1/embeddings`: the bundled all-MiniLM-L6-v2 through the documents module's `Embedder`.

The API reuses `storage.embeddings` (the embedder the document index uses, with its runtime and precision
choice) instead of loading the model its own way. The model loads on the first embeddings request, so a
server that only chats never pays for it. Vectors are L2-normalised (cosine similarity = dot product),
384 floats each.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from desktop.api.errors import ApiError
from desktop.api.queue import JobFailed, WorkerStopped
from desktop.api.schemas import MAX_EMBEDDING_INPUTS, EmbeddingRequest

if TYPE_CHECKING:
    from desktop.api.app import ApiState

EMBEDDING_MODEL = "all-minilm-l6-v2"
DIMENSIONS = 384
# all-MiniLM-L6-v2 reads at most 256 word pieces (longer inputs are truncated, as OpenAI does); this only
# bounds the work a single request can ask for.
MAX_INPUT_CHARS = 32_000


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...
    def count_tokens(self, texts: Sequence[str]) -> int: ...


class MiniLM:
    """`storage.embeddings.Embedder` with its vectors as JSON-ready lists."""

    def __init__(self) -> None:
        from desktop.engine import physical_cores
        from storage.embeddings import Embedder as Shared

        # The default thread count includes hyper-threads, which only contend.
        self.inner = Shared(threads=physical_cores())

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.inner.embed(list(texts))]

    def count_tokens(self, texts: Sequence[str]) -> int:
        return self.inner.count_tokens(texts)


def default_embedder() -> Embedder:
    """Called on the embeddings worker thread, so its (cheap) construction never blocks the event loop."""
    from storage.offline import ensure_offline

    ensure_offline()
    return MiniLM()


async def run(state: ApiState, texts: list[str]) -> tuple[list[list[float]], int]:
    """Vectors and the token count for `texts`, on the embeddings worker (the OpenAI and Ollama routes)."""
    from desktop.api.chat import submit

    def work() -> Iterator[tuple[list[list[float]], int]]:
        embedder = state.embedder()
        yield embedder.embed(texts), embedder.count_tokens(texts)

    ticket = submit(state.embed_worker, work, "the embedder is busy; retry later")
    try:
        async for vectors, tokens in ticket:
            return vectors, tokens
    except JobFailed:
        raise ApiError(500, "the embedder failed (see the server log)", "internal_error") from None
    except WorkerStopped:
        pass
    finally:
        ticket.cancel()
    raise ApiError(503, "the server is shutting down", "server_stopping")


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
            raise ApiError(400, f"each input must be at most {MAX_INPUT_CHARS} characters", "input_too_long", "input")
    if req.dimensions is not None and req.dimensions != DIMENSIONS:
        raise ApiError(400, f"{EMBEDDING_MODEL} produces {DIMENSIONS} dimensions", "invalid_dimensions", "dimensions")
    return texts  # type: ignore[return-value]


def response(vectors: list[list[float]], tokens: int, encoding: str, model: str) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)} for i, v in enumerate(vectors)]
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
