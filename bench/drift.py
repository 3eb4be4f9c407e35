"""Benchmark: the forgetting guard's drift on normal runs and on deliberately over-trained ones.

    .venv/bin/python bench/drift.py                   # every corpus, normal + over-trained, ~2 min of training each
    .venv/bin/python bench/drift.py --corpus git-relnotes --minutes 1

Each row is one real `pipeline.run` (a fresh encrypted store in a temporary HEARTH_HOME, the bundled model,
llama.cpp evaluation, the activation decision): held-out gain on the corpus' unseen documents, drift on the
general answers (personalize/drift.py), and whether the adapter was activated. "normal" is the trainer's
defaults in a short time budget with the pipeline's replay; "over-trained" is a constant high learning rate
without replay on the same corpus, the kind of run that makes chat answer in the corpus' voice. The corpora
are bench/train.py's (three authors and kinds of text). DRIFT_LIMIT is justified by this table (README,
"Forgetting guard").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train import CORPORA  # noqa: E402 - bench/train.py's corpora, one definition

from storage import cpu  # noqa: E402

DOCS_PER_CORPUS = 10  # with DOC_BYTES: ~15k tokens, a few minutes of training, ~1.5k held out
DOC_BYTES = 6000  # each document's first 6 KB: llama.cpp evaluates the held-out tenth three times per run
RUNS: dict[str, dict[str, Any]] = {
    "normal": {"config": {}, "replay": None},
    "over-trained": {"config": {"lr": 1e-2, "min_lr": 1e-2, "warmup_steps": 1}, "replay": 0.0},
}


def one_run(corpus: str, kind: str, minutes: float, seq_len: int, threads: int) -> dict[str, Any]:
    """One pipeline run in a fresh encrypted store; the general answers are generated once and cached per home."""
    from personalize import pipeline, registry
    from personalize.train import TrainConfig

    train_docs, held_docs = CORPORA[corpus]()
    docs = [(name, text[:DOC_BYTES]) for name, text in train_docs[-DOCS_PER_CORPUS:] + held_docs[:2]]
    spec = RUNS[kind]
    cfg = TrainConfig(seq_len=seq_len, max_minutes=minutes, threads=threads, **spec["config"])
    extra = {} if spec["replay"] is None else {"replay_fraction": spec["replay"]}
    registry.Registry(STORE).set_active(None)  # each row starts from the base, not from the previous row
    started = time.monotonic()
    report = pipeline.run(STORE, cfg, data_override=(docs, []), **extra)
    return {
        "corpus": corpus,
        "run": kind,
        "steps": report.steps,
        "gain": 1 - report.adapter_ppl / report.base_ppl,
        "drift": report.drift,
        "state": report.state,
        "seconds": time.monotonic() - started,
    }


STORE: Any = None


def main() -> None:
    global STORE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="default: every corpus")
    parser.add_argument("--run", action="append", choices=sorted(RUNS), help="default: both")
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per run")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="hearth-bench-drift-")
    os.environ.update(HEARTH_HOME=home, HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench drift passphrase")
    from personalize import drift
    from storage.store import Store

    STORE = Store.open()
    print(f"{cpu.describe()}; load average {os.getloadavg()[0]:.1f}; drift limit {drift.DRIFT_LIMIT}", flush=True)
    rows = []
    for corpus in args.corpus or list(CORPORA):
        for kind in args.run or list(RUNS):
            try:
                row = one_run(corpus, kind, args.minutes, args.seq_len, args.threads)
            except LookupError as err:
                print(f"{corpus}: skipped, corpus not installed ({err})", flush=True)
                break
            rows.append(row)
            print(
                f"{row['corpus']:13} {row['run']:13} steps {row['steps']:3}  gain {100 * row['gain']:+6.1f}%  "
                f"drift {row['drift']:9.3f}x  {row['state']:9}  {row['seconds']:5.0f} s",
                flush=True,
            )
    STORE.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
