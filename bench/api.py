"""The local API versus the engine it wraps, and MCP search over a large store: one process, ratios same-run.

1. Streaming decode: the same model object, messages (the API's default system prompt plus one question) and
   greedy sampling through three paths: `Engine.chat` directly; the official `openai` client streaming SSE
   from `/v1/chat/completions`; the official `ollama` client streaming NDJSON from `/api/chat`. Both API paths
   pay HTTP, the token check against the store, the model queue and the framing. The KV cache is reset
   before every run so each pays the full prompt; runs alternate so machine noise hits all alike; medians
   are reported, and the median of each API run's ratio to the engine run just before it (robust to the load
drifting between rounds on a shared machine). Goal: each API / engine >= 0.9x on decode tokens/s.
2. MCP search at scale: `search_documents` called with the official `mcp` client over Streamable HTTP
   (`/mcp`, token-checked), on a store of `--chunks` synthetic chunks built as bench/ingest.py builds its
   latency store; the baseline is `Searcher.search` called directly in this process (query embedding
   included on both sides). Reported: p50/p95 of each, and the MCP overhead.

    .venv/bin/python bench/api.py [--runs 5] [--tokens 128] [--threads N] [--chunks 100000] [--queries 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage import cpu
from storage.offline import ensure_offline

if TYPE_CHECKING:  # imported in main(), after ensure_offline()
    import ollama
    import openai

    from desktop.engine import Engine

QUESTION = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SEARCHES = [
    "how to parse command line arguments",
    "read and write json files",
    "format dates and times",
    "random numbers with a seed",
    "compress a file with gzip",
    "run a subprocess and capture output",
    "temporary files and directories",
    "compare two sequences of lines",
    "secure random tokens",
    "thread safe queue",
]


def _timed(events: Any) -> tuple[float, float, int]:
    """(ttft_s, decode tokens/s, tokens) from an iterator of (is_text, tokens_or_None) items."""
    start = time.perf_counter()
    first = last = None
    tokens = 0
    for is_text, count in events:
        if is_text:
            last = time.perf_counter()
            first = first or last
        if count is not None:
            tokens = count
    assert first is not None and last is not None and tokens > 1
    return first - start, (tokens - 1) / (last - first), tokens


def engine_run(engine: Engine, max_tokens: int) -> tuple[float, float, int]:
    from desktop.engine import Message, SamplingParams
    from desktop.engine.conversation import DEFAULT_SYSTEM_PROMPT

    engine.reset_cache()
    messages = [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", QUESTION)]

    def events() -> Any:
        for event in engine.chat(messages, SamplingParams(max_tokens=max_tokens, temperature=0)):
            if event.kind == "error":
                raise SystemExit(f"engine error: {event.text}")
            yield event.kind == "text", event.stats.completion_tokens if event.stats else None

    return _timed(events())


def openai_run(client: openai.OpenAI, engine: Engine, max_tokens: int) -> tuple[float, float, int]:
    engine.reset_cache()  # the worker is idle between runs, so this does not race it
    stream = client.chat.completions.create(
        model="hearth",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    return _timed(
        (bool(c.choices and c.choices[0].delta.content), c.usage.completion_tokens if c.usage else None) for c in stream
    )


def ollama_run(client: ollama.Client, engine: Engine, max_tokens: int) -> tuple[float, float, int]:
    engine.reset_cache()
    stream = client.chat(
        model="hearth",
        messages=[{"role": "user", "content": QUESTION}],
        options={"temperature": 0, "num_predict": max_tokens},
        stream=True,
    )
    return _timed((bool(c.message.content), c.eval_count if c.done else None) for c in stream)


def decode(args: argparse.Namespace, store: Any, token: str) -> None:
    import ollama
    import openai

    from desktop.api.app import ApiConfig, Backend
    from desktop.api.gate import ClientGate
    from desktop.api.server import ApiServer
    from desktop.engine import Engine
    from desktop.engine.models import bundled_model_path

    engine = Engine.load(bundled_model_path(), n_ctx=2048, threads=args.threads)
    backend = Backend(engine=lambda: engine, store=lambda: store)
    server = ApiServer(backend, ClientGate(store.connect_again), ApiConfig(mcp=False), port=0)
    server.start()
    oa = openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)
    ol = ollama.Client(host=server.root_url, headers={"Authorization": f"Bearer {token}"})
    runs: dict[str, list[tuple[float, float, int]]] = {"engine": [], "OpenAI API": [], "Ollama API": []}
    try:
        engine_run(engine, 16)  # warm-up: page in the weights, start the worker, open the HTTP connections
        openai_run(oa, engine, 16)
        ollama_run(ol, engine, 16)
        for _ in range(args.runs):
            runs["engine"].append(engine_run(engine, args.tokens))
            runs["OpenAI API"].append(openai_run(oa, engine, args.tokens))
            runs["Ollama API"].append(ollama_run(ol, engine, args.tokens))
    finally:
        oa.close()
        server.stop()
        engine.close()

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in runs[name])

    print(f"DECODE      model {engine.path.name}, threads {engine.threads}, {args.runs} runs x {args.tokens} tokens")
    print(f"            {'':12} {'TTFT ms':>9} {'decode tok/s':>13} {'tokens':>7}")
    for name in runs:
        print(f"            {name:12} {med(name, 0) * 1000:9.1f} {med(name, 1):13.1f} {med(name, 2):7.0f}")
    for name in ("OpenAI API", "Ollama API"):
        # Each API run is paired with the engine run just before it, so a load swing between rounds cancels out.
        paired = statistics.median(a[1] / e[1] for a, e in zip(runs[name], runs["engine"], strict=True))
        print(
            f"            {name}/engine decode tok/s {med(name, 1) / med('engine', 1):.3f}x of medians, "
            f"{paired:.3f}x median of paired runs (goal >= 0.9x); "
            f"TTFT overhead {(med(name, 0) - med('engine', 0)) * 1000:+.1f} ms"
        )


def mcp_search(args: argparse.Namespace, store: Any, token: str) -> None:
    import ingest  # bench/ingest.py: the same synthetic 100k-chunk store as its latency benchmark

    from desktop.api.app import ApiConfig, Backend
    from desktop.api.gate import ClientGate
    from desktop.api.server import ApiServer
    from storage.search import Searcher

    folder = Path(tempfile.mkdtemp(prefix="hearth-bench-words-"))
    ingest.build_corpus(folder, 200_000)
    words: Counter = Counter()
    for p in folder.iterdir():
        words.update(w.lower() for w in p.read_text().split() if w.isalpha())
    t = time.perf_counter()
    n = ingest.fill_synthetic(store, args.chunks, words)
    print(f"MCP SEARCH  store of {n} chunks built in {time.perf_counter() - t:.0f}s")
    queries = [SEARCHES[i % len(SEARCHES)] + ("" if i < len(SEARCHES) else f" {i}") for i in range(args.queries)]

    searcher = Searcher(lambda: store.db)
    searcher.search(queries[0])  # loads the embedder and the vector matrix once, as the server's first call does
    direct = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q, k=5)
        direct.append(time.perf_counter() - t)

    backend = Backend(engine=lambda: None, store=lambda: store)  # type: ignore[arg-type,return-value]
    server = ApiServer(backend, ClientGate(store.connect_again), ApiConfig(), port=0)
    server.start()
    try:
        through_mcp, cold = asyncio.run(_mcp_calls(f"{server.root_url}/mcp", token, queries))
    finally:
        server.stop()

    def pct(times: list[float], q: float) -> float:
        ordered = sorted(times)
        return 1000 * ordered[int(q * (len(ordered) - 1))]

    print(f"            first MCP call {cold:.1f}s (loads the embedder and the {n} x 384 matrix)")
    for name, times in (("direct Searcher", direct), ("MCP over HTTP", through_mcp)):
        print(f"            {name:16} p50 {pct(times, 0.5):7.1f} ms  p95 {pct(times, 0.95):7.1f} ms")
    print(f"            MCP/direct p50 {pct(through_mcp, 0.5) / pct(direct, 0.5):.2f}x; load {os.getloadavg()[0]:.1f}")


async def _mcp_calls(url: str, token: str, queries: list[str]) -> tuple[list[float], float]:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=600)
    times = []
    async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=600) as client:
        t = time.perf_counter()
        await client.call_tool("search_documents", {"query": queries[0]})
        cold = time.perf_counter() - t
        for q in queries:
            t = time.perf_counter()
            result = await client.call_tool("search_documents", {"query": q, "k": 5})
            times.append(time.perf_counter() - t)
            assert not result.is_error and len(result.structured_content["passages"]) == 5
    return times, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores)")
    parser.add_argument("--chunks", type=int, default=100_000, help="synthetic chunks for the MCP search part")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--skip", choices=["decode", "mcp"], help="leave one part out")
    args = parser.parse_args()
    os.environ.update(HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench passphrase, not a secret")
    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-api-")
    ensure_offline()

    from storage.clients import Clients
    from storage.store import Store

    print(f"CPU: {cpu.describe()}; load {os.getloadavg()[0]:.1f}")
    store = Store.open()
    token = Clients(store.settings).default_token()
    assert token is not None
    try:
        if args.skip != "decode":
            decode(args, store, token)
        if args.skip != "mcp":
            mcp_search(args, store, token)
    finally:
        store.close()


if __name__ == "__main__":
    main()
