"""The real bundled MiniLM: normalised float32 vectors, bf16 close to fp32, meaning reflected in cosine."""

from __future__ import annotations

import numpy as np
import pytest

from storage.embeddings import DIM, Embedder, cpu_has_native_bf16, from_blobs, resolve_precision, to_blob

TEXTS = [
    "Water the tomatoes deeply twice a week.",
    "Tomato plants need a thorough watering two times weekly.",
    "The quarterly revenue grew by seventeen percent.",
]


@pytest.fixture(scope="module")
def fp32() -> Embedder:
    return Embedder("fp32")


def test_vectors_are_normalised_float32(fp32: Embedder) -> None:
    vectors = fp32.embed(TEXTS)
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert fp32.embed([]).shape == (0, DIM)


def test_paraphrase_is_closer_than_unrelated(fp32: Embedder) -> None:
    a, b, c = fp32.embed(TEXTS)
    assert a @ b > 0.6 > a @ c


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 is only the default on CPUs with native bf16")
def test_bf16_matches_fp32(fp32: Embedder) -> None:
    long_texts = [t * 8 for t in TEXTS]
    cos = np.sum(Embedder("bf16").embed(long_texts) * fp32.embed(long_texts), axis=1)
    assert cos.min() > 0.99


def test_auto_precision_follows_the_cpu() -> None:
    assert resolve_precision("auto") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("int8") == "int8"


def test_blob_roundtrip_is_exact(fp32: Embedder) -> None:
    vectors = fp32.embed(TEXTS)
    np.testing.assert_array_equal(from_blobs([to_blob(v) for v in vectors]), vectors)
