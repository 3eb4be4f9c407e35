"""`hearth personalize eval`: perplexity of the user's files under the base model and under the active adapter.

Where the time went (one 512-token window of Git's release notes, CPU-seconds on one core of an AVX-512/AMX
Xeon): llama.cpp's decode of the Q4_1 model with logits for every position 5.2 s, the log-softmax after it
0.7 s; the same window in torch on the dequantized weights 1.8 s in fp32, 0.74 s in bf16. Scoring every
position of a 135M model is matrix-matrix work, where llama.cpp's 4-bit kernels (dequantize, then multiply)
lose to dense fp32/bf16 GEMMs, and `train.chunked_nll` never materializes the 512 x 49k logits. So once the
base is converted for torch (every personalize run leaves it in the cache), files are scored there with
exactly the trainer's held-out metric (`train.evaluate`, the trainer's tokenizer, the trainer's dtype where
that conversion exists, else fp32), the active adapter being its stored LoRA state wrapped around the base
by peft, not the exported GGUF. The base is loaded once: the LoRA is wrapped around it and switched off for
the base's pass. Windows of one length go through the model four at a time (`BATCH_WINDOWS`): on the bundled
model in bf16, two threads, a 4-window batch took 2.5-2.6 s per window against 7.3-7.4 s one at a time
(loaded machine; CPU time fell alike, so it is not the load), the dense GEMMs being far more efficient at
2,048 rows than at 512.

The activation decision still measures in llama.cpp (`pipeline.run`), where the fidelity gate also checks that
llama.cpp reproduces the torch number within `export_gguf.FIDELITY_TOLERANCE`, so an activated adapter's torch
and llama.cpp perplexities agree; `runtime="llama.cpp"` measures in the chat's runtime itself, for anyone who
wants that number (tests/integration/test_personalize_eval.py compares the two paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from personalize import base, registry
from storage.errors import KnownError

RUNTIMES = ("auto", "torch", "llama.cpp")
BATCH_WINDOWS = 4  # windows per forward pass in torch (measured: see the module docstring)


def evaluate_files(
    store: Any,
    files: Sequence[Path],
    gguf_path: Path | None = None,
    window: int = 512,
    runtime: str = "auto",
    threads: int = 0,
) -> dict[str, Any]:
    """Perplexity of `files` under the base and under the active adapter (None when no adapter is active).

    `threads` 0 means the physical cores; tests pass 1 (llama.cpp's threads spin at barriers on a busy CPU).

    "auto" is torch once the base is converted for torch (after any personalize run), else llama.cpp:
    converting takes about a minute, more than llama.cpp needs for a few files.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}")
    texts = [_read(Path(file)) for file in files]
    info = base.inspect(gguf_path)
    reg = registry.Registry(store)
    active = reg.active()
    if active is not None and active.base_sha256 != info.sha256:
        active = None  # trained for another model: the chat does not use it with this one either
    if runtime == "auto":
        runtime = "torch" if converted_dtype(info) and (active is None or active.config) else "llama.cpp"
    score = _torch if runtime == "torch" else _llama_cpp
    base_ppl, adapter_ppl = score(info, reg, active, texts, window, threads)
    return {
        "base_ppl": base_ppl,
        "adapter": active.id if active else None,
        "adapter_ppl": adapter_ppl,
        "runtime": runtime,
    }


def converted_dtype(info: base.BaseInfo) -> str | None:
    """The dtype of a torch conversion of the base already cached, the trainer's own first (no torch import)."""
    from personalize import train

    trainer = "torch.bfloat16" if train.use_bf16(train.TrainConfig()) else "torch.float32"
    for dtype in dict.fromkeys((trainer, "torch.float32")):
        if (base.cache_dir(info, dtype) / "done").exists():
            return dtype
    return None


def _torch(
    info: base.BaseInfo,
    reg: registry.Registry,
    active: registry.AdapterRecord | None,
    texts: list[str],
    window: int,
    threads: int,
) -> tuple[float, float | None]:
    """Both scores from one load of the base: the LoRA is wrapped around it once and switched off for the base."""
    import warnings
    from dataclasses import replace

    import torch

    from personalize import train

    cfg = train.TrainConfig(threads=threads)
    train.set_threads(cfg)
    dtype = converted_dtype(info)
    model, tokenizer = base.load(info, getattr(torch, dtype.removeprefix("torch.")) if dtype else train.base_dtype(cfg))
    model.eval()  # type: ignore[no-untyped-call]  # transformers' Module.eval has no annotations here
    windows = _windows([list(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts], window)
    if active is None:
        return perplexity(model, windows), None
    shape = active.config
    with warnings.catch_warnings():  # peft calls transformers' deprecated is_gradient_checkpointing
        warnings.simplefilter("ignore", FutureWarning)
        adapted = train.wrap_lora(
            model,
            replace(
                cfg,
                rank=shape["rank"],
                alpha=shape["alpha"],
                target_modules=tuple(shape["target_modules"]),
                layer_fraction=shape.get("layer_fraction", 1.0),  # versions before it had a LoRA on every layer
            ),
            reg.lora_state(active.id),
        )
    adapted.eval()
    with adapted.disable_adapter():
        base_ppl = perplexity(adapted, windows)
    return base_ppl, perplexity(adapted, windows)


def perplexity(model: Any, windows: list[list[int]], batch: int = BATCH_WINDOWS) -> float:
    """`train.evaluate`'s held-out perplexity (the same chunked loss over the same windows), faster for scoring
    only: windows of one length go through the model `batch` at a time, under inference_mode."""
    import math

    import torch

    from personalize import train

    by_length: dict[int, list[list[int]]] = {}
    for ids in windows:
        by_length.setdefault(len(ids), []).append(ids)
    total_nll, count = 0.0, 0
    with torch.inference_mode():
        for group in by_length.values():
            for start in range(0, len(group), batch):
                nll, n = train.chunked_nll(model, torch.tensor(group[start : start + batch], dtype=torch.long))
                total_nll, count = total_nll + float(nll), count + n
    return math.exp(total_nll / max(count, 1))


def _llama_cpp(
    info: base.BaseInfo,
    reg: registry.Registry,
    active: registry.AdapterRecord | None,
    texts: list[str],
    window: int,
    threads: int,
) -> tuple[float, float | None]:
    from personalize import pipeline, runtime

    llama = pipeline.open_llama(info.path, window, threads)
    windows = _windows([llama.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts], window)
    base_ppl = runtime.perplexity_tokens(llama, windows)
    if active is None:
        return base_ppl, None
    with pipeline.adapter_active(llama, reg.gguf_bytes(active.id), info.sha256):
        return base_ppl, runtime.perplexity_tokens(llama, windows)


def _windows(token_lists: list[list[int]], window: int) -> list[list[int]]:
    """Each text cut into windows of `window` tokens, evaluated independently (as the trainer's held-out)."""
    windows = [ids[i : i + window] for ids in token_lists for i in range(0, len(ids), window)]
    windows = [w for w in windows if len(w) >= 2]
    if not windows:
        raise KnownError("The text is too short to measure perplexity.")
    return windows


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise KnownError(f"Cannot read {path.name}.") from err
