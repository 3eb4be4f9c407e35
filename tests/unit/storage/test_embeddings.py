"""The real bundled MiniLM on both runtimes: normalised float32 vectors that match sentence-transformers fp32."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from storage.cpu import int8_dot, native_bf16
from storage.embeddings import DIM, Embedder, from_blobs, resolve_precision, to_blob
from storage.errors import KnownError

pytestmark = pytest.mark.usefixtures("minilm_ir")  # these embed: the session's converted model

TEXTS = [
    "Water the tomatoes deeply twice a week.",
    "Tomato plants need a thorough watering two times weekly.",
    "The quarterly revenue grew by seventeen percent.",
]
# Long enough to be truncated at 256 word pieces, plus padding-heavy mixes of short and long in one batch.
LONG = [t * 40 for t in TEXTS]
MIXED = TEXTS + LONG + ["  padded with spaces  ", "x"]


@pytest.fixture(scope="module")
def reference() -> Embedder:
    """sentence-transformers on torch in fp32: the model's definition of its vectors."""
    return Embedder("fp32", backend="torch")


@pytest.fixture(scope="module")
def openvino() -> Embedder:
    return Embedder(backend="openvino")


def test_vectors_are_normalised_float32(reference: Embedder) -> None:
    vectors = reference.embed(TEXTS)
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert reference.embed([]).shape == (0, DIM)


def test_paraphrase_is_closer_than_unrelated(reference: Embedder) -> None:
    a, b, c = reference.embed(TEXTS)
    assert a @ b > 0.6 > a @ c


def test_openvino_matches_sentence_transformers(openvino: Embedder, reference: Embedder) -> None:
    """Same tokenization, truncation, pooling and order as the reference, in batches smaller than the input."""
    openvino.batch_size = 3
    got, want = openvino.embed(MIXED), reference.embed(MIXED)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.sum(got * want, axis=1).min() > 0.999
    assert float(openvino.embed_query(TEXTS[0]) @ want[0]) > 0.999
    assert openvino.count_tokens(MIXED) == reference.count_tokens(MIXED)


def test_openvino_model_is_cached_as_ir(openvino: Embedder) -> None:
    """The session's conversion (tests/conftest.py `minilm_ir`) is what each home's cache links to."""
    from storage import paths

    openvino.load()
    cached = list(paths.cache().glob("minilm-*/model.xml"))
    assert len(cached) == 1 and cached[0].with_suffix(".bin").stat().st_size > 80_000_000


def test_a_damaged_cache_is_rebuilt(reference: Embedder) -> None:
    from storage import paths

    link = next(paths.cache().glob("minilm-*"))
    link.unlink()  # this test's own copy, not the session's
    Embedder(backend="openvino").load()
    (link / "model.xml").write_text("<net>truncated")
    got = Embedder(backend="openvino").embed(TEXTS)
    assert np.sum(got * reference.embed(TEXTS), axis=1).min() > 0.999


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_loading_the_openvino_embedder_opens_no_socket(precision: str) -> None:
    """A bare `import openvino` sends a Google Analytics event from a forked process, and NNCF (int8) one of its
    own through the same package; Hearth's import and quantization must not.

    Socket and fork audit events are written to stderr from every process (the hook survives fork), and the
    interpreter waits for the telemetry thread pool before exiting, so a late send would still be seen. The
    int8 case quantizes in the child, on its own copy of the f32 IR (the session's has the int8 graph cached).
    """
    if precision == "int8":
        import shutil

        from storage import paths

        link = next(paths.cache().glob("minilm-*"))
        source = link.resolve()
        link.unlink()
        link.mkdir()
        for name in ("model.xml", "model.bin", "done"):
            shutil.copy(source / name, link / name)
    code = (
        "import sys\n"
        "def hook(event, args):\n"
        "    if event.startswith('socket.') or event == 'os.fork':\n"
        "        sys.stderr.write(f'AUDIT {event} {args}\\n')\n"
        "sys.addaudithook(hook)\n"
        "from storage.embeddings import Embedder\n"
        f"print(Embedder({precision!r}, backend='openvino').embed(['hello']).shape)\n"
    )
    # HEARTH_HOME is this test's home, whose cache links to the session's converted model.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"(1, {DIM})"
    assert "AUDIT" not in result.stderr, result.stderr


@pytest.mark.skipif(not native_bf16(), reason="bf16 is only the default on CPUs with native bf16")
def test_torch_bf16_matches_fp32(reference: Embedder) -> None:
    cos = np.sum(Embedder("bf16", backend="torch").embed(LONG) * reference.embed(LONG), axis=1)
    assert cos.min() > 0.99


def test_auto_precision_follows_the_cpu() -> None:
    want = "bf16" if native_bf16() else "int8" if int8_dot() else "fp32"  # nncf: a dependency
    assert resolve_precision("auto") == want
    with pytest.raises(ValueError, match="int4"):
        resolve_precision("int4")  # type: ignore[arg-type]


def test_int8_keeps_the_fp32_vector_space(reference: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantized once into the cache; its vectors sit next to fp32 ones (old stores need no re-embedding)."""
    from storage import openvino_minilm, paths

    int8 = Embedder("int8")
    got, want = int8.embed(MIXED), reference.embed(MIXED)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.sum(got * want, axis=1).min() > 0.97
    a, b, c = got[:3]
    assert a @ want[1] > 0.6 > a @ want[2] and a @ b > 0.6 > a @ c  # int8 queries rank fp32 passages alike
    assert float(int8.embed_query(TEXTS[0]) @ want[0]) > 0.98
    assert int8.count_tokens(MIXED) == reference.count_tokens(MIXED)
    assert len(list(paths.cache().glob("minilm-*/model-int8.xml"))) == 1

    def no_second_quantization(*args: object) -> None:
        raise AssertionError("quantized again despite the cache")

    monkeypatch.setattr(openvino_minilm, "quantize_int8", no_second_quantization)
    np.testing.assert_allclose(Embedder("int8").embed(TEXTS), got[:3], atol=1e-6)


def test_int8_needs_openvino() -> None:
    with pytest.raises(KnownError, match="int8"):
        Embedder("int8", backend="torch")


def test_blob_roundtrip_is_exact(reference: Embedder) -> None:
    vectors = reference.embed(TEXTS)
    np.testing.assert_array_equal(from_blobs([to_blob(v) for v in vectors]), vectors)
