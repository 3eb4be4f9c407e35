"""Retrieval quality on corpora Hearth was never tuned on: Hearth's hybrid search versus a naive baseline.

Run: `.venv/bin/python bench/retrieval.py` (installs nothing; `--install` runs apt-get for the corpora).
Prints file-level recall@5 and MRR@10 per corpus and overall, both arms in this one process.

Corpora (public, offline, from Debian packages; none committed here):
- sqlite-docs: SQLite's HTML reference (`sqlite3-doc`), English technical docs, one page per file.
- manpages-it: Italian man pages (`manpages-it` and the translations other packages ship), rendered to
  text with `man`: a non-English corpus for an English-trained embedder.
- kjv: the King James Bible (`bible-kjv`, public domain), one plain-text file per book: prose.

Questions (bench/data/retrieval/*.tsv, written by hand for this benchmark, not drawn from the text): what
a user would type, paraphrased, one answer file each. File-level: a hit counts when its file is the answer.

- Naive: the issue's baseline. The parsed text of each file cut into 1,000-character paragraph chunks
  (no headings, titles or file names), all-MiniLM-L6-v2 vectors (the same model and runtime as Hearth, so
  the difference is the pipeline), FTS5 BM25 over every query word, reciprocal rank fusion (k=60) of the
  top 50 of each, files ranked by their best chunk.
- Hearth: `Ingester.add` into a fresh encrypted store, then `Searcher.search(k=5)`.

`--vector-cache DIR` remembers every vector by (model, precision, text), so a rerun after a search-side
change embeds nothing it embedded before; `--levers` scores search-side variants on Hearth's store.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

DATA = Path(__file__).resolve().parent / "data" / "retrieval"
RRF_K = 60
CANDIDATES = 50

# Index pages, changelogs and cross-reference tables: lists of every other page's title, not documents.
_SQLITE_INDEXES = "requirements sitemap keyword_index changes oldnews news chronology syntaxdiagrams capi3ref doclist"
_SQLITE_SKIP = {
    *_SQLITE_INDEXES.split(),
    *(f"doc_{kind}_crossref" for kind in ("backlink", "keyword", "pagelink", "target")),
    *("docs", "index", "toc", "c_interface", "fileformat", "opcode", "lang_keywords", "copyright-release"),
    "consortium_agreement-20071201",
}
_KJV_BOOKS = [
    ("Genesis", "Genesis"), ("Exodus", "Exodus"), ("Leviticus", "Leviticus"), ("Numbers", "Numbers"),
    ("Deuteronomy", "Deuteronomy"), ("Joshua", "Joshua"), ("Judges", "Judges"), ("Ruth", "Ruth"),
    ("1 Samuel", "1Sa"), ("2 Samuel", "2Sa"), ("1 Kings", "1Ki"), ("2 Kings", "2Ki"), ("1 Chronicles", "1Ch"),
    ("2 Chronicles", "2Ch"), ("Ezra", "Ezra"), ("Nehemiah", "Nehemiah"), ("Esther", "Esther"), ("Job", "Job"),
    ("Psalms", "Psalms"), ("Proverbs", "Proverbs"), ("Ecclesiastes", "Ecclesiastes"),
    ("Song of Solomon", "SSol"), ("Isaiah", "Isaiah"), ("Jeremiah", "Jeremiah"),
    ("Lamentations", "Lamentations"), ("Ezekiel", "Ezekiel"), ("Daniel", "Daniel"), ("Hosea", "Hosea"),
    ("Joel", "Joel"), ("Amos", "Amos"), ("Obadiah", "Obadiah"), ("Jonah", "Jonah"), ("Micah", "Micah"),
    ("Nahum", "Nahum"), ("Habakkuk", "Habakkuk"), ("Zephaniah", "Zephaniah"), ("Haggai", "Haggai"),
    ("Zechariah", "Zechariah"), ("Malachi", "Malachi"), ("Matthew", "Matthew"), ("Mark", "Mark"),
    ("Luke", "Luke"), ("John", "John"), ("Acts", "Acts"), ("Romans", "Romans"), ("1 Corinthians", "1Co"),
    ("2 Corinthians", "2Co"), ("Galatians", "Galatians"), ("Ephesians", "Ephesians"),
    ("Philippians", "Philippians"), ("Colossians", "Colossians"), ("1 Thessalonians", "1Th"),
    ("2 Thessalonians", "2Th"), ("1 Timothy", "1Ti"), ("2 Timothy", "2Ti"), ("Titus", "Titus"),
    ("Philemon", "Philemon"), ("Hebrews", "Hebrews"), ("James", "James"), ("1 Peter", "1Pe"),
    ("2 Peter", "2Pe"), ("1 John", "1Jn"), ("2 John", "2Jn"), ("3 John", "3Jn"), ("Jude", "Jude"),
    ("Revelation", "Revelation"),
]  # fmt: skip


def build_sqlite(folder: Path) -> None:
    import shutil

    for page in sorted(Path("/usr/share/doc/sqlite3").glob("*.html")):
        if page.stem not in _SQLITE_SKIP:
            shutil.copyfile(page, folder / page.name)


def build_manpages_it(folder: Path) -> None:
    """Every Italian man page rendered by `man` (aliases that only `.so`-include another page skipped)."""
    import gzip

    env = {**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": ""}
    for page in sorted(Path("/usr/share/man/it").glob("man*/*.gz")):
        with gzip.open(page) as f:
            alias = f.read(4) == b".so "
        if page.is_symlink() or alias:
            continue
        shown = subprocess.run(["man", "-E", "UTF-8", "-l", str(page)], capture_output=True, env=env, check=True)
        plain = subprocess.run(["col", "-bx"], input=shown.stdout, capture_output=True, check=True).stdout
        (folder / (page.name.removesuffix(".gz") + ".txt")).write_bytes(plain)


def build_kjv(folder: Path) -> None:
    """One file per book, one verse a line, a blank line between chapters."""
    for name, ref in _KJV_BOOKS:
        out = subprocess.run(["bible", "-f", f"{ref} 1:1-200:200"], capture_output=True, text=True, check=True)
        lines, chapter = [], None
        for line in out.stdout.splitlines():
            m = re.match(r"\S+?(\d+):(\d+) (.*)", line)
            if not m:
                continue
            if m.group(1) != chapter:
                chapter = m.group(1)
                lines.append(f"\n{name} chapter {chapter}\n")
            lines.append(f"{m.group(1)}:{m.group(2)} {m.group(3)}")
        (folder / f"{name}.txt").write_text("\n".join(lines).strip() + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Corpus:
    name: str
    kind: str
    packages: tuple[str, ...]  # Debian packages that provide it
    probe: str  # a path that exists once they are installed
    build: Callable[[Path], None]


CORPORA = [
    Corpus("sqlite-docs", "English reference docs (HTML)", ("sqlite3-doc",), "/usr/share/doc/sqlite3/wal.html",
           build_sqlite),
    Corpus("manpages-it", "Italian man pages (text)", ("manpages-it", "man-db", "bsdextrautils"),
           "/usr/share/man/it/man5/fstab.5.gz", build_manpages_it),
    Corpus("kjv", "public-domain prose (one file per book)", ("bible-kjv",), "/usr/bin/bible", build_kjv),
]  # fmt: skip


def questions(corpus: Corpus) -> list[tuple[str, str]]:
    rows = (DATA / f"{corpus.name}.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(r.split("\t")) for r in rows if r.strip() and not r.startswith("#")]  # type: ignore[misc]


class CachedEmbedder:
    """The embedder's own vectors, remembered by (model, precision, text) in a folder of .npz files.

    Levers that change only the search side, or a rerun after one corpus changed, then skip re-embedding
    the rest (tens of minutes on a loaded 2-core machine). The corpora are public, so the cache holds no
    user content. Vectors are looked up by the exact text embedded, so a chunking change misses the cache.
    """

    def __init__(self, inner: object, folder: Path) -> None:
        import numpy as np

        self.inner = inner
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.known: dict[str, object] = {}
        for part in sorted(folder.glob("*.npz")):
            with np.load(part) as z:
                self.known.update(zip(z["keys"].tolist(), z["vectors"], strict=True))
        self.fresh: dict[str, object] = {}

    def __getattr__(self, name: str) -> object:  # batch_size, model_name, backend, precision, load
        return getattr(self.inner, name)

    def _key(self, kind: str, text: str) -> str:
        import hashlib

        tag = f"{self.inner.model_name}|{self.inner.precision}|{kind}|{text}"  # type: ignore[attr-defined]
        return hashlib.sha256(tag.encode()).hexdigest()

    def embed(self, texts: list[str]) -> object:
        import numpy as np

        keys = [self._key("passage", t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.known))
        if missing:
            order = {k: i for i, k in enumerate(keys)}
            vectors = self.inner.embed([texts[order[k]] for k in missing])  # type: ignore[attr-defined]
            for k, v in zip(missing, vectors, strict=True):
                self.known[k] = self.fresh[k] = v
        from storage.embeddings import DIM

        return np.stack([self.known[k] for k in keys]) if keys else np.zeros((0, DIM), dtype=np.float32)

    def embed_query(self, text: str) -> object:
        key = self._key("query", text)
        if key not in self.known:
            self.known[key] = self.fresh[key] = self.inner.embed_query(text)  # type: ignore[attr-defined]
        return self.known[key]

    def save(self) -> None:
        import numpy as np

        if self.fresh:
            part = self.folder / f"{len(list(self.folder.glob('*.npz'))):04d}.npz"
            np.savez(part, keys=np.array(list(self.fresh)), vectors=np.stack(list(self.fresh.values())))
            self.fresh = {}


# -- naive baseline ---------------------------------------------------------------------------------------


def paragraph_chunks(text: str, size: int = 1000) -> list[str]:
    """Paragraphs (blank-line separated) packed greedily up to `size` characters; longer ones cut hard."""
    out: list[str] = []
    buf = ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        while len(para) > size:
            if buf:
                out.append(buf)
                buf = ""
            out.append(para[:size])
            para = para[size:]
        if not para:
            continue
        if buf and len(buf) + 2 + len(para) > size:
            out.append(buf)
            buf = ""
        buf = f"{buf}\n\n{para}" if buf else para
    if buf:
        out.append(buf)
    return out


class Naive:
    def __init__(self, folder: Path, embedder: object) -> None:
        from storage.parsers import ParseError, parse

        self.embedder = embedder
        self.owners: list[str] = []
        texts: list[str] = []
        for path in sorted(folder.iterdir()):
            try:
                docs = parse(path.name, path.read_bytes())
            except ParseError:
                continue
            for chunk in paragraph_chunks("\n\n".join(s.text for d in docs for s in d.sections)):
                texts.append(chunk)
                self.owners.append(path.name)
        self.matrix = embedder.embed(texts)  # type: ignore[attr-defined]
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE fts USING fts5(text)")
        self.db.executemany("INSERT INTO fts (rowid, text) VALUES (?, ?)", enumerate(texts))

    def search(self, query: str) -> list[str]:
        import numpy as np

        words = re.findall(r"\w+", query.lower())
        match = " OR ".join(f'"{w}"' for w in words)
        keyword = [r[0] for r in self.db.execute(
            "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?", [match, CANDIDATES])]  # fmt: skip
        sims = self.matrix @ self.embedder.embed_query(query)  # type: ignore[attr-defined]
        semantic = np.argsort(-sims)[:CANDIDATES].tolist()
        fused: dict[int, float] = {}
        for ranked in (keyword, semantic):
            for rank, i in enumerate(ranked, start=1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        files: list[str] = []
        for i in sorted(fused, key=lambda c: -fused[c]):
            if self.owners[i] not in files:
                files.append(self.owners[i])
        return files[:10]


# -- Hearth -----------------------------------------------------------------------------------------------


class Hearth:
    def __init__(self, folder: Path, embedder: object) -> None:
        from storage.ingest import Ingester
        from storage.search import Searcher
        from storage.store import Store

        os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-retrieval-")
        self.store = Store.open()
        summary = Ingester(lambda: self.store.db, embedder).add([folder])  # type: ignore[arg-type]
        self.failed = summary.by_status("failed")
        self.chunks = summary.chunks
        self.searcher = Searcher(lambda: self.store.db, embedder)  # type: ignore[arg-type]

    def search(self, query: str) -> list[str]:
        files: list[str] = []
        for hit in self.searcher.search(query, k=10):
            name = Path(hit.source).name
            if name not in files:
                files.append(name)
        return files


# Search-side levers, measured on the same ingested store (no re-embedding): fusion weights, RRF's k, the
# BM25 weight of the heading column, and how a document's chunks add up to its rank.
LEVERS: dict[str, dict[str, object]] = {
    "best chunk only": {"DOCUMENT_CHUNKS": 1},
    "top 2 chunks, decay 1": {"DOCUMENT_DECAY": 1.0},
    "top 3 chunks": {"DOCUMENT_CHUNKS": 3},
    "equal weights": {"FUSION_WEIGHTS": {"keyword": 1.0, "vector": 1.0}},
    "keyword x0.5": {"FUSION_WEIGHTS": {"keyword": 0.5, "vector": 1.0}},
    "vectors only": {"FUSION_WEIGHTS": {"keyword": 0.0, "vector": 1.0}},
    "keywords only": {"FUSION_WEIGHTS": {"keyword": 1.0, "vector": 0.0}},
    "RRF k=20": {"RRF_K": 20},
    "bm25 heading 2.0": {"BM25_WEIGHTS": (1.0, 2.0)},
}


def lever_scores(index: Hearth, qs: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    import storage.search as search

    out = {}
    for name, overrides in LEVERS.items():
        saved = {k: getattr(search, k) for k in overrides}
        for k, v in overrides.items():
            setattr(search, k, v)
        try:
            out[name] = score([index.search(q) for q, _ in qs], [a for _, a in qs])
        finally:
            for k, v in saved.items():
                setattr(search, k, v)
    return out


def score(ranked: list[list[str]], answers: list[str]) -> tuple[float, float]:
    recall = sum(a in r[:5] for r, a in zip(ranked, answers, strict=True)) / len(answers)
    mrr = sum(1 / (r.index(a) + 1) if a in r[:10] else 0.0 for r, a in zip(ranked, answers, strict=True))
    return recall, mrr / len(answers)


def ensure_corpus(corpus: Corpus, install: bool) -> None:
    if Path(corpus.probe).exists():
        return
    if not install:
        raise SystemExit(f"{corpus.name}: install it first: apt-get install -y {' '.join(corpus.packages)} "
                         "(or pass --install)")  # fmt: skip
    subprocess.run(["apt-get", "install", "-y", "-q", *corpus.packages], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="apt-get install the corpora that are missing")
    parser.add_argument("--corpus", action="append", choices=[c.name for c in CORPORA], help="only these")
    parser.add_argument("--misses", action="store_true", help="print the questions each arm missed")
    parser.add_argument("--levers", action="store_true", help="also score search-side variants on Hearth's store")
    parser.add_argument("--title-on", action="store_true", help="Hearth embeds chunks with their document title")
    parser.add_argument("--hearth-only", action="store_true", help="skip the naive arm")
    parser.add_argument("--vector-cache", type=Path, help="remember vectors here by text (public corpora only)")
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32", "int8"],
        default="auto",
        help="the embedder's precision, for both arms (int8: quality of the quantized model)",
    )
    args = parser.parse_args()
    os.environ.update(HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench passphrase, not a secret")
    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-")  # the embedder's cache, not the user's
    from storage.cpu import native_bf16
    from storage.embeddings import Embedder
    from storage.offline import ensure_offline

    ensure_offline()
    if args.title_on:
        import storage.documents

        storage.documents.EMBED_TITLES = True
    embedder: object = Embedder(precision=args.precision)
    embedder.load()  # type: ignore[attr-defined]
    if args.vector_cache:
        embedder = CachedEmbedder(embedder, args.vector_cache)
    print(f"embedder: {embedder.model_name} on {embedder.backend} {embedder.precision} "
          f"(native bf16: {native_bf16()}); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    totals = {"naive": [0.0, 0.0], "hearth": [0.0, 0.0]}
    n_all = 0
    print(f"{'corpus':<12} {'files':>5} {'qs':>3}  {'naive r@5':>9} {'MRR':>5}  {'hearth r@5':>10} {'MRR':>5}  kind")
    for corpus in CORPORA:
        if args.corpus and corpus.name not in args.corpus:
            continue
        ensure_corpus(corpus, args.install)
        folder = Path(tempfile.mkdtemp(prefix=f"corpus-{corpus.name}-"))
        corpus.build(folder)
        qs = questions(corpus)
        files = {p.name for p in folder.iterdir()}
        missing = [a for _, a in qs if a not in files]
        assert not missing, f"{corpus.name}: answers not in the corpus: {missing}"
        answers = [a for _, a in qs]
        row = {"naive": (float("nan"), float("nan"))}
        for arm, cls in (("naive", Naive), ("hearth", Hearth)):
            if arm == "naive" and args.hearth_only:
                continue
            start = time.perf_counter()
            index = cls(folder, embedder)
            ranked = [index.search(q) for q, _ in qs]
            row[arm] = score(ranked, answers)
            totals[arm][0] += row[arm][0] * len(qs)
            totals[arm][1] += row[arm][1] * len(qs)
            if args.misses:
                for (q, a), r in zip(qs, ranked, strict=True):
                    if a not in r[:5]:
                        print(f"  {arm} missed: {q} -> {a} (got {r[:5]})")
            print(f"  {arm}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if isinstance(embedder, CachedEmbedder):
                embedder.save()
            if arm == "hearth" and args.levers:
                for name, (r5, mrr) in lever_scores(index, qs).items():  # type: ignore[arg-type]
                    print(f"  lever {corpus.name:<12} {name:<18} r@5 {r5:.3f} MRR {mrr:.3f}", flush=True)
        n_all += len(qs)
        print(f"{corpus.name:<12} {len(files):>5} {len(qs):>3}  {row['naive'][0]:>9.3f} {row['naive'][1]:>5.3f}  "
              f"{row['hearth'][0]:>10.3f} {row['hearth'][1]:>5.3f}  {corpus.kind}", flush=True)  # fmt: skip
    if n_all:
        nv = [float("nan")] * 2 if args.hearth_only else totals["naive"]
        ht = totals["hearth"]
        print(f"{'overall':<12} {'':>5} {n_all:>3}  {nv[0] / n_all:>9.3f} {nv[1] / n_all:>5.3f}  "
              f"{ht[0] / n_all:>10.3f} {ht[1] / n_all:>5.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
