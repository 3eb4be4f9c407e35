"""The local API versus the engine it wraps: streaming tokens/s and time to first token, one process.

Both paths run the same model object, the same messages (the API's default system prompt plus one
question) and greedy sampling, so they generate the same tokens; the KV cache is reset before every run so
both pay the full prompt. The API path is the official `openai` client streaming from an `ApiServer` on a
loopback port (HTTP, auth, the model queue, SSE). Runs alternate so machine noise hits both alike; medians
are reported. Goal: API/engine >= 0.9x on decode tokens/s.

    .venv/bin/python bench/api.py [--runs 5] [--tokens 128] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING

from storage.offline import ensure_offline

if TYPE_CHECKING:  # imported in main(), after ensure_offline()
    import openai

    from desktop.engine import Engine

QUESTION = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def engine_run(engine: Engine, max_tokens: int) -> tuple[float, float, int]:
    """(ttft_s, decode tokens/s, tokens) calling `Engine.chat` directly."""
    from desktop.engine import Message, SamplingParams
    from desktop.engine.conversation import DEFAULT_SYSTEM_PROMPT

    engine.reset_cache()
    messages = [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", QUESTION)]
    params = SamplingParams(max_tokens=max_tokens, temperature=0)
    start = time.perf_counter()
    first = last = None
    tokens = 0
    for event in engine.chat(messages, params):
        if event.kind == "text":
            last = time.perf_counter()
            first = first or last
        elif event.kind == "done":
            tokens = event.stats.completion_tokens
        else:
            raise SystemExit(f"engine error: {event.text}")
    assert first is not None and last is not None
    return first - start, (tokens - 1) / (last - first), tokens


def api_run(client: openai.OpenAI, engine: Engine, max_tokens: int) -> tuple[float, float, int]:
    """The same through the API, measured at the client (first and last content chunk)."""
    engine.reset_cache()  # the worker is idle between runs, so this does not race it
    start = time.perf_counter()
    first = last = None
    tokens = 0
    stream = client.chat.completions.create(
        model="hearth",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None
    return first - start, (tokens - 1) / (last - first), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores)")
    args = parser.parse_args()
    ensure_offline()

    import openai

    from desktop.api.app import ApiConfig, Backend
    from desktop.api.server import ApiServer
    from desktop.engine import Engine
    from desktop.engine.models import bundled_model_path

    engine = Engine.load(bundled_model_path(), n_ctx=2048, threads=args.threads)
    server = ApiServer(Backend(engine=lambda: engine), "hearth-bench-token", ApiConfig(), port=0)
    server.start()
    client = openai.OpenAI(base_url=server.base_url, api_key=server.token, max_retries=0)
    try:
        engine_run(engine, 16)  # warm-up: page in the weights, start the worker, open the HTTP connection
        api_run(client, engine, 16)
        direct, api = [], []
        for _ in range(args.runs):
            direct.append(engine_run(engine, args.tokens))
            api.append(api_run(client, engine, args.tokens))
    finally:
        client.close()
        server.stop()
        engine.close()

    def med(runs: list[tuple[float, float, int]], i: int) -> float:
        return statistics.median(r[i] for r in runs)

    print(f"model: {engine.path.name}, threads {engine.threads}, {args.runs} runs x {args.tokens} tokens")
    print(f"{'':10} {'TTFT ms':>9} {'decode tok/s':>13} {'tokens':>7}")
    for name, runs in (("engine", direct), ("API", api)):
        print(f"{name:10} {med(runs, 0) * 1000:9.1f} {med(runs, 1):13.1f} {med(runs, 2):7.0f}")
    ratio = med(api, 1) / med(direct, 1)
    print(f"API/engine decode tokens/s: {ratio:.3f}x (goal >= 0.9x)")
    print(
        f"API/engine TTFT: {med(api, 0) / med(direct, 0):.3f}x (HTTP + queue + SSE overhead: "
        f"{(med(api, 0) - med(direct, 0)) * 1000:+.1f} ms)"
    )


if __name__ == "__main__":
    main()
