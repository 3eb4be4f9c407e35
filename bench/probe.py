"""Which prompt framing answers plain questions most robustly, on every numeric path measured.

For every candidate framing (desktop/engine/prompt_probe.py) and every probe question, the expected reply is
scored teacher-forced on llama.cpp as built here and on the same GGUF dequantized into torch (float32, the
reference path the personalization trainer uses). A probe's margin is the smallest, over the reply's tokens,
of p(expected token) - p(best other token): while positive, greedy decoding says exactly the expected reply.
Each path is named by the instruction set its kernels ran ("llama.cpp AVX2", "torch fp32 AVX512"), and
--write adds this run's paths to the model's record in framings.json, keeping those measured on other CPUs or
builds; the recorded framing is the one whose worst margin over all recorded paths is best.

    .venv/bin/python bench/probe.py [--model FILE.gguf] [--write]

The AVX2-only path on an AVX-512 machine: a llama-cpp-python built with -DGGML_NATIVE=OFF (AVX2, FMA, F16C;
no AVX-512, no AMX) first on PYTHONPATH, and torch held to AVX2 with ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 (bench/avx2_path.sh does both).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import numpy as np

from desktop.engine import Engine
from desktop.engine.framing import FRAMINGS_FILE, RELIABLE_MARGIN
from desktop.engine.models import bundled_model_path
from desktop.engine.prompt_probe import (
    FRAMINGS,
    PROBES,
    RESTRICTING,
    TEMPERATURES,
    ProbeScore,
    llama_scores,
    probe_inputs,
    score,
)
from personalize.base import file_sha256
from storage import cpu
from storage.offline import ensure_offline

PROBE_QUESTIONS = [question for question, _ in PROBES]
SAYS_IT = 0.9  # a reliable probe must come out word for word at least this often at the default temperature


def llama_path() -> str:
    """'llama.cpp AVX2' or 'llama.cpp AVX512+AMX': the SIMD its CPU kernels were built for (not the CPU's)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    isa = "AVX512" if "AVX512 = 1" in info else "AVX2" if "AVX2 = 1" in info else "generic"
    return f"llama.cpp {isa}+AMX" if "AMX_INT8 = 1" in info else f"llama.cpp {isa}"


def torch_path() -> str:
    import torch

    return f"torch fp32 {torch.backends.cpu.get_cpu_capability()}"


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
    parser.add_argument("--write", action="store_true", help="add these paths to the model's record in framings.json")
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
    with contextlib.redirect_stderr(io.StringIO()):  # the GGUF reader's own tqdm bar, not a switchable one
        reference = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    reference.eval()

    paths = (llama_path(), torch_path())
    print(f"model {path.name}; CPU: {cpu.describe()}; paths: {', '.join(paths)}")
    table = {
        name: {paths[0]: llama_scores(engine, system), paths[1]: torch_scores(reference, engine, system)}
        for name, system in FRAMINGS.items()
    }
    engine.close()
    margins = {
        name: {p: {s.question: round(s.margin, 3) for s in scores} for p, scores in by_path.items()}
        for name, by_path in table.items()
    }
    sampled = {
        name: {p: {s.question: {str(t): round(v, 3) for t, v in s.sampled.items()} for s in scores}
               for p, scores in by_path.items()}
        for name, by_path in table.items()
    }  # fmt: skip
    print(f"\n{'framing':18} {'path':22} {'worst':>7} {'mean 1st p':>10}  per-probe margin")
    for name, by_path in table.items():
        for path_name, scores in by_path.items():
            worst = min(s.margin for s in scores)
            mean_first = np.mean([s.first_token_p for s in scores])
            per = " ".join(f"{s.margin:+.2f}" for s in scores)
            print(f"{name:18} {path_name:22} {worst:+7.3f} {mean_first:10.3f}  {per}")
    data = json.loads(FRAMINGS_FILE.read_text()) if FRAMINGS_FILE.exists() else {}
    sha = file_sha256(path)
    entry = data.get(sha, {"measured": {}, "cpu": {}})
    for name in margins:  # the paths recorded earlier (other CPUs, other builds) count as well
        margins[name] = {**entry["measured"].get(name, {}), **margins[name]}
        sampled[name] = {**entry.get("sampled", {}).get(name, {}), **sampled[name]}
    recorded_paths = sorted({p for by_path in margins.values() for p in by_path})
    eligible = [name for name in margins if name not in RESTRICTING]
    best = max(eligible, key=lambda n: min(m for by_path in margins[n].values() for m in by_path.values()))
    worst_best = min(m for by_path in margins[best].values() for m in by_path.values())
    reliable = [q for q in PROBE_QUESTIONS if all(by_path[q] >= RELIABLE_MARGIN for by_path in margins[best].values())]
    print(f"\nover every recorded path ({', '.join(recorded_paths)}):")
    print(f"best worst-case margin of the framings that do not cap replies: {best} ({worst_best:+.3f})")
    print(f"reliable probes (>= {RELIABLE_MARGIN} on every path):")
    for question in reliable:
        print(f"  {question}")
    print(f"\n{best}: probability that sampling says exactly the expected reply (top-k 40, top-p 0.9, min-p 0.05,")
    print("repeat penalty 1.1), worst probe over every recorded path, then per probe on each path:")
    sampled_paths = sorted(sampled[best])  # runs from before sampling was measured recorded margins only
    for t in TEMPERATURES:
        per_path = {p: [sampled[best][p][q][str(t)] for q in PROBE_QUESTIONS] for p in sampled_paths}
        worst = min(min(v) for v in per_path.values())
        print(f"  temperature {t}: worst {worst:.3f}; " + "; ".join(
            f"{p}: " + " ".join(f"{v:.2f}" for v in vs) for p, vs in per_path.items()))  # fmt: skip
    temperature = max(
        (
            t
            for t in TEMPERATURES
            if all(sampled[best][p][q][str(t)] >= SAYS_IT for p in sampled_paths for q in reliable)
        ),
        default=min(TEMPERATURES),
    )
    print(f"default temperature: {temperature} (the highest at which every reliable probe is said exactly with "
          f"probability >= {SAYS_IT} on every path)")  # fmt: skip
    if args.write:
        cpus = {**entry.get("cpu", {}), **dict.fromkeys(paths, cpu.describe())}
        data[sha] = {
            "file": path.name,
            "framing": best,
            "system_prompt": FRAMINGS[best],
            "temperature": temperature,
            "measured": margins,
            "sampled": sampled,
            "cpu": cpus,
        }
        FRAMINGS_FILE.write_text(json.dumps(data, indent=1) + "\n")
        print(f"recorded in {FRAMINGS_FILE}")


if __name__ == "__main__":
    main()
