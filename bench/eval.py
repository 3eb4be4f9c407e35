"""Benchmark: perplexity evaluation of ~50 KB of text (what `hearth personalize eval` does), three ways.

    .venv/bin/python bench/eval.py              # git release notes 2.39.x (Debian's git package), ~50 KB
    .venv/bin/python bench/eval.py --kb 20 --threads 2

- llama.cpp, before: one decode per 512-token window with logits for every position, then the log-softmax in
  float64 over a copy of the 512 x 49k logits (the old `runtime.perplexity_tokens`).
- llama.cpp, now: the same decodes (batched prompt processing, logits_all over n_batch), the log-softmax in
  float32 over a view of llama.cpp's logits (`runtime.sequence_nll`).
- torch: the dequantized base in fp32 under no_grad, windows in batches of 8.

All three see the same token windows; the perplexities agree to a few parts in 10^4 (llama.cpp runs the
quantized weights, torch the dequantized ones). Prints seconds and tokens/s per way and the ratio to "before".
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELNOTES = Path("/usr/share/doc/git/RelNotes")


def old_perplexity(llama, windows) -> float:  # type: ignore[no-untyped-def]
    """The previous implementation, kept here as the baseline."""
    import numpy as np

    from personalize import runtime

    n_vocab = llama.n_vocab()
    total, count = 0.0, 0
    for piece in windows:
        runtime.reset_cache(llama)
        llama._batch.set_batch(batch=piece, n_past=0, logits_all=True)
        llama._ctx.decode(llama._batch)
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(piece) * n_vocab,))
        logits = logits.reshape(len(piece), n_vocab)[:-1].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        targets = np.asarray(piece[1:])
        total += float((log_z - logits[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    return math.exp(total / count)


def torch_perplexity(model, windows, batch: int = 8) -> float:  # type: ignore[no-untyped-def]
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch):
            group = [w for w in windows[start : start + batch]]
            width = max(len(w) for w in group)
            ids = torch.tensor([w + [0] * (width - len(w)) for w in group])
            mask = torch.tensor([[1] * len(w) + [0] * (width - len(w)) for w in group])
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="sum", ignore_index=-100)
            total += float(nll)
            count += int((labels != -100).sum())
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    from personalize import base, pipeline, runtime

    text = "\n\n".join(p.read_text(errors="replace") for p in sorted(RELNOTES.glob("2.3*.txt")))[: args.kb * 1024]
    info = base.inspect(None)
    llama = pipeline.open_llama(info.path, 512, args.threads)
    ids = llama.tokenize(text.encode(), add_bos=False, special=False)
    windows = [ids[i : i + 512] for i in range(0, len(ids), 512) if len(ids[i : i + 512]) >= 2]
    torch.set_num_threads(args.threads)
    model, _ = base.load(info)
    model.eval()
    ways = {
        "llama.cpp before (float64 copy)": lambda: old_perplexity(llama, windows),
        "llama.cpp now (float32 view)": lambda: runtime.perplexity_tokens(llama, windows),
        "torch fp32 no_grad, batch 8": lambda: torch_perplexity(model, windows),
    }
    print(f"{len(text) // 1024} KB, {len(ids)} tokens, {len(windows)} windows of 512, {args.threads} threads")
    baseline = None
    for name, way in ways.items():
        start = time.monotonic()
        ppl = way()
        seconds = time.monotonic() - start
        baseline = baseline or seconds
        print(f"{name:34} {seconds:7.1f} s  {len(ids) / seconds:7.0f} tok/s  ppl {ppl:.4f}  {baseline / seconds:.2f}x")


if __name__ == "__main__":
    main()
