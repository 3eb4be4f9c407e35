"""SQLCipher versus plain SQLite on the store's workload, in one process: prints times and the ratio.

Workload: insert 20,000 chunk-sized rows (~1,000 characters) into a table with an external-content FTS5
index (triggers, as the store uses), in committed batches of 500; then 1,000 FTS queries of one or two
words with bm25 ranking and a snippet. Both databases get the store's pragmas (WAL, synchronous=NORMAL,
temp_store=MEMORY). Goal: SQLCipher <= 1.25x plain SQLite.

    .venv/bin/python bench/store.py [--rows 20000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = [
    "CREATE TABLE chunks (id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL, text TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id')",
    """CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END""",
]
QUERY = """SELECT c.id, snippet(chunks_fts, 0, '[', ']', '…', 12) FROM chunks_fts
           JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? ORDER BY rank LIMIT 10"""


def corpus(rows: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(8000)]
    cumulative = list(itertools.accumulate(1 / (i + 1) for i in range(len(vocab))))  # Zipf-like, as in prose
    texts = []
    for _ in range(rows):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < 1000:
            words.extend(rng.choices(vocab, cum_weights=cumulative, k=20))
        texts.append(" ".join(words)[:1000])
    queries = [" ".join(rng.choices(vocab[50:3000], k=rng.randint(1, 2))) for _ in range(1000)]
    return texts, queries


def run(connect: Callable[[Path], Any], path: Path, texts: list[str], queries: list[str]) -> tuple[float, float]:
    conn = connect(path)
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    for sql in SCHEMA:
        conn.execute(sql)
    start = time.perf_counter()
    for batch in range(0, len(texts), 500):
        # Explicit transactions, as the store's `atomic()` writes: both connections are autocommit
        # (isolation_level=None, see storage/db.py), where `with conn:` would commit row by row.
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO chunks (document_id, text) VALUES (?, ?)",
            [(i // 20, t) for i, t in enumerate(texts[batch : batch + 500], start=batch)],
        )
        conn.execute("COMMIT")
    inserted = time.perf_counter()
    hits = 0
    for q in queries:
        hits += len(conn.execute(QUERY, [q]).fetchall())
    done = time.perf_counter()
    conn.close()
    assert hits > 0
    return inserted - start, done - inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()
    import sqlcipher3

    from storage import db as dbmod

    texts, queries = corpus(args.rows)
    queries = queries[: args.queries]
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, connect in [
            ("sqlite3", lambda p: sqlite3.connect(p, isolation_level=None)),
            ("sqlcipher", lambda p: dbmod.connect(p, key)),
        ]:
            results[name] = run(connect, Path(tmp) / f"{name}.db", texts, queries)
        # Note: the two link different SQLite versions (stdlib's vs the one SQLCipher bundles).
        print(f"SQLite {sqlite3.sqlite_version} vs SQLCipher on SQLite {sqlcipher3.sqlite_version} (same process)")
        print(f"{'':10} {'insert':>9} {'query':>9} {'total':>9}")
        for name, (ins, qry) in results.items():
            print(f"{name:10} {ins:8.2f}s {qry:8.2f}s {ins + qry:8.2f}s")
        (pi, pq), (ci, cq) = results["sqlite3"], results["sqlcipher"]
        print(f"{'ratio':10} {ci / pi:8.2f}x {cq / pq:8.2f}x {(ci + cq) / (pi + pq):8.2f}x   (goal <= 1.25x)")


if __name__ == "__main__":
    main()
