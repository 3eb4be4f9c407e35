"""Hearth's chat engine versus a plain `llama_cpp.Llama` on the same GGUF and threads, in one process.

Prints decode tokens/s and time to first token (TTFT) for both, their ratio (goal: Hearth >= 0.95x raw
decode speed), and Hearth's follow-up TTFT over its first-turn TTFT (goal <= 0.5x, from KV prefix reuse).
Runs alternate between the two so machine noise hits both alike; medians are reported.

    .venv/bin/python bench/chat.py [--runs 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import time

from desktop.engine import Engine, Message, SamplingParams
from desktop.engine.models import bundled_model_path
from storage.offline import ensure_offline

# A first turn with some weight (a pasted note), then a short follow-up: the shape of a real chat.
NOTE = " ".join(
    f"Item {i}: the meeting about the garden project moved to room {i % 7}, bring the seed list." for i in range(40)
)
FIRST = [
    Message("system", "You are a helpful assistant."),
    Message("user", f"Here are my notes:\n{NOTE}\nWrite a long, detailed summary of these notes."),
]


def raw_run(llama, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(ttft_s, decode tokens/s, tokens) for plain llama-cpp-python streaming."""
    llama.reset()
    start = time.perf_counter()
    first = None
    n = 0
    for _ in llama.create_completion(prompt, max_tokens=max_tokens, temperature=0, stream=True):
        n += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - start, (n - 1) / (end - first), n


def hearth_run(engine: Engine, messages: list[Message], max_tokens: int, cold: bool) -> tuple[float, float, int, str]:
    if cold:
        engine.reset_cache()
    params = SamplingParams(temperature=0, max_tokens=max_tokens, top_k=0, top_p=1.0, repeat_penalty=1.0)
    text = []
    stats = None
    for event in engine.chat(messages, params):
        if event.kind == "text":
            text.append(event.text)
        elif event.kind == "done":
            stats = event.stats
    assert stats is not None
    return stats.time_to_first_token_s, stats.decode_tokens_per_s, stats.completion_tokens, "".join(text)


def main() -> None:
    ensure_offline()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()

    from llama_cpp import Llama

    path = bundled_model_path()
    engine = Engine.load(path, n_ctx=4096)
    raw = Llama(model_path=str(path), n_ctx=4096, n_threads=engine.threads, n_threads_batch=engine.threads,
                n_batch=512, verbose=False)  # fmt: skip
    prompt = engine.llama.detokenize(engine.render(FIRST), special=True).decode()
    rows: dict[str, list[float]] = {k: [] for k in ("raw_ttft", "raw_tps", "h_ttft", "h_tps", "h_follow_ttft")}
    for _ in range(args.runs):
        ttft, tps, _ = raw_run(raw, prompt, args.tokens)
        rows["raw_ttft"].append(ttft)
        rows["raw_tps"].append(tps)
        ttft, tps, _, answer = hearth_run(engine, FIRST, args.tokens, cold=True)
        rows["h_ttft"].append(ttft)
        rows["h_tps"].append(tps)
        follow = [*FIRST, Message("assistant", answer), Message("user", "Which room is item 3 in?")]
        rows["h_follow_ttft"].append(hearth_run(engine, follow, 16, cold=False)[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"model {path.name}, threads {engine.threads}, runs {args.runs}, {args.tokens} tokens")
    print(f"prompt tokens (first turn): {len(engine.render(FIRST))}")
    print(f"raw llama_cpp  decode {med['raw_tps']:7.1f} tok/s   TTFT {med['raw_ttft'] * 1000:7.1f} ms")
    print(f"hearth engine  decode {med['h_tps']:7.1f} tok/s   TTFT {med['h_ttft'] * 1000:7.1f} ms")
    print(f"hearth follow-up TTFT {med['h_follow_ttft'] * 1000:7.1f} ms")
    # Ratios per adjacent pair of runs, then their median: robust to load that drifts during the benchmark.
    decode = statistics.median(h / r for h, r in zip(rows["h_tps"], rows["raw_tps"], strict=True))
    follow = statistics.median(f / t for f, t in zip(rows["h_follow_ttft"], rows["h_ttft"], strict=True))
    print(f"decode ratio hearth/raw: {decode:.3f}x (goal >= 0.95; median of per-pair ratios)")
    print(f"follow-up TTFT / first TTFT: {follow:.3f}x (goal <= 0.5)")
    raw.close()
    engine.close()


if __name__ == "__main__":
    main()
