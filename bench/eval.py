"""Benchmark: `hearth personalize eval` (base and adapter) before and after, in one invocation, on two corpora.

    .venv/bin/python bench/eval.py              # ~50 KB of each corpus
    .venv/bin/python bench/eval.py --kb 20 --corpus git-relnotes

Both arms run `personalize.evaluate.evaluate_files` on the same text in a fresh encrypted store holding one
active adapter (real LoRA weights on every layer's q/v projections, exported to GGUF as the pipeline does):
- before: runtime="llama.cpp", what `eval` did until now (one decode per 512-token window with logits for every
  position, the adapter hot-swapped, the log-softmax in numpy over llama.cpp's logits);
- now: runtime="torch" (the default once the base is converted): the dequantized base in the trainer's dtype
  (bf16 where the CPU has native bf16, else fp32), the trainer's own chunked held-out loss, the adapter as peft.
The base's torch conversion is paid before timing (a personalize run leaves it in the cache). Prints seconds,
tokens/s, both perplexities and the ratio, and the CPU features; CPU-seconds too, since the machine may be shared.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train import CORPORA  # noqa: E402 - bench/train.py's corpora, one definition

from storage import cpu as machine  # noqa: E402

EVAL_CORPORA = ("git-relnotes", "python-howto")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--corpus", action="append", choices=EVAL_CORPORA, help="default: both")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="hearth-bench-eval-")
    os.environ.update(HEARTH_HOME=home, HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench eval passphrase")
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from test_personalize_eval import add_active_adapter

    from personalize import base, evaluate
    from personalize.train import TrainConfig, base_dtype
    from storage.store import Store

    print(f"{machine.describe()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    base.load(base.inspect(None), base_dtype(TrainConfig()))  # the conversion a personalize run leaves behind
    store = Store.open()
    add_active_adapter(store)
    for corpus in args.corpus or EVAL_CORPORA:
        train_docs, held_docs = CORPORA[corpus]()
        text = "\n\n".join(t for _, t in held_docs + train_docs)[: args.kb * 1024]
        sample = Path(home) / f"{corpus}.txt"
        sample.write_text(text)
        results = {}
        for arm, runtime in (("before", "llama.cpp"), ("now", "torch")):
            wall, cpu = time.monotonic(), time.process_time()
            results[arm] = evaluate.evaluate_files(store, [sample], runtime=runtime)
            results[arm].update(seconds=time.monotonic() - wall, cpu_s=time.process_time() - cpu)
        before, now = results["before"], results["now"]
        for arm, r in results.items():
            print(
                f"{corpus:13} {arm:6} ({r['runtime']:9}) {r['seconds']:6.1f} s wall {r['cpu_s']:6.1f} cpu-s  "
                f"ppl base {r['base_ppl']:.3f} adapter {r['adapter_ppl']:.3f}",
                flush=True,
            )
        print(
            f"{corpus:13} {len(text) // 1024} KB: now is {before['seconds'] / now['seconds']:.2f}x faster by wall "
            f"clock, {before['cpu_s'] / now['cpu_s']:.2f}x per CPU-second; perplexity now/before: base "
            f"{now['base_ppl'] / before['base_ppl']:.4f}, adapter {now['adapter_ppl'] / before['adapter_ppl']:.4f}",
            flush=True,
        )
    store.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
