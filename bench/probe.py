"""Which prompt framing answers plain questions most robustly, on both numeric paths.

For every candidate framing (desktop/engine/prompt_probe.py) and every probe question, the expected reply is
scored teacher-forced on llama.cpp as built here and on the same GGUF dequantized into torch (float32, the
reference path the personalization trainer uses). A probe's margin is the smallest, over the reply's tokens,
of p(expected token) - p(best other token): while positive, greedy decoding says exactly the expected reply.
A framing's score is its worst margin over all probes and both paths; the best framing is recorded for the
model (keyed by the GGUF's sha256) with --write.

    .venv/bin/python bench/probe.py [--model FILE.gguf] [--write]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from desktop.engine import Engine
from desktop.engine.framing import FRAMINGS_FILE, RELIABLE_MARGIN
from desktop.engine.models import bundled_model_path
from desktop.engine.prompt_probe import FRAMINGS, ProbeScore, llama_scores, probe_inputs, score
from personalize.base import file_sha256
from storage.offline import ensure_offline


def cpu_features() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.machine()
    have = set(flags.split(":", 1)[1].split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in have)


def torch_scores(model, engine: Engine, system: str | None) -> list[ProbeScore]:
    import torch

    out = []
    with torch.no_grad():
        for question, prompt, reply in probe_inputs(engine, system):
            logits = model(torch.tensor([prompt + reply])).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(reply)]
            out.append(score(question, reply, logits.double().numpy()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF to probe (default: the bundled model)")
    parser.add_argument("--write", action="store_true", help="record the winning framing in framings.json")
    args = parser.parse_args()
    ensure_offline()
    from llama_cpp import Llama

    path = (args.model or bundled_model_path()).resolve()
    llama = Llama(model_path=str(path), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    engine = Engine(llama, path, 512, 2)
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    reference = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    reference.eval()

    print(f"model {path.name}; CPU features: {cpu_features()}; llama.cpp vs torch float32 (dequantized GGUF)")
    table: dict[str, dict[str, list[ProbeScore]]] = {}
    for name, system in FRAMINGS.items():
        table[name] = {"llama.cpp": llama_scores(engine, system), "torch": torch_scores(reference, engine, system)}
    print(f"\n{'framing':18} {'path':10} {'worst':>7} {'mean 1st p':>10}  per-probe margin")
    for name, paths_ in table.items():
        for path_name, scores in paths_.items():
            worst = min(s.margin for s in scores)
            mean_first = np.mean([s.first_token_p for s in scores])
            per = " ".join(f"{s.margin:+.2f}" for s in scores)
            print(f"{name:18} {path_name:10} {worst:+7.3f} {mean_first:10.3f}  {per}")
    best = max(table, key=lambda n: min(s.margin for scores in table[n].values() for s in scores))
    worst_best = min(s.margin for scores in table[best].values() for s in scores)
    reliable = [
        q.question
        for i, q in enumerate(table[best]["llama.cpp"])
        if all(scores[i].margin >= RELIABLE_MARGIN for scores in table[best].values())
    ]
    print(f"\nbest worst-case margin: {best} ({worst_best:+.3f}); reliable probes (>= {RELIABLE_MARGIN} on both):")
    for question in reliable:
        print(f"  {question}")
    if args.write:
        data = json.loads(FRAMINGS_FILE.read_text()) if FRAMINGS_FILE.exists() else {}
        data[file_sha256(path)] = {
            "file": path.name,
            "framing": best,
            "system_prompt": FRAMINGS[best],
            "measured": {
                name: {p: {s.question: round(s.margin, 3) for s in scores} for p, scores in paths_.items()}
                for name, paths_ in table.items()
            },
            "cpu": cpu_features(),
        }
        FRAMINGS_FILE.write_text(json.dumps(data, indent=1) + "\n")
        print(f"recorded in {FRAMINGS_FILE}")
    engine.close()


if __name__ == "__main__":
    main()
