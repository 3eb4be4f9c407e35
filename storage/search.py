"""Hybrid retrieval over ingested documents: FTS5 BM25 and exact cosine similarity, fused by RRF.

Why both: BM25 finds rare exact words (names, codes, error strings) that embeddings blur; embeddings find
paraphrases BM25 cannot. Reciprocal rank fusion (score = sum of 1/(k + rank)) needs no score calibration
between the two. Exact search rather than an ANN index: a float32 matrix of 100k x 384 is 150 MB and one
matrix-vector product (~5 ms), so approximate search would buy nothing but recall loss at this scale.

The matrix is cached per process and reloaded when `doc_state.vectors` (bumped by triggers on every
vector write) changes. Hits are de-duplicated per document (a file, or one message of a mailbox), so five
hits are five sources, not one file five times. Documents are ranked by their best chunks together, not by
the best one alone: a page's best keyword chunk and its best vector chunk are often two different chunks,
and chunk-level RRF gives that agreement no credit (see DOCUMENT_CHUNKS).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlite_utils import Database

from storage.documents import Documents
from storage.embeddings import MODEL_NAME, Embedder, from_blobs

RRF_K = 60  # the constant from Cormack et al. (2009); flattens the head so both lists get a say
CANDIDATES = 50  # per retriever; fused then de-duplicated down to k
# RRF weight of each retriever, and FTS5 bm25() weights of the (text, heading) columns; bench/retrieval.py
# --levers measures alternatives on three corpora. BM25 is the stronger retriever on all three (alone:
# 0.762 / 0.805 recall@5 on sqlite-docs / KJV, vectors alone 0.833 / 0.732); halving the vectors' vote
# found one more KJV answer and lost none (README). One question in ~40: a small, not a proven, edge.
FUSION_WEIGHTS = {"keyword": 1.0, "vector": 0.5}
BM25_WEIGHTS = (1.0, 0.5)
# FTS5 scores every row a query matches, so BM25's cost grows with the postings of common words (a word in
# every chunk cost >100 ms at 100k chunks). Query words are taken rarest first while their summed document
# frequencies stay within this budget; common words add little to BM25 anyway, and the vector side still
# sees the whole question.
POSTINGS_BUDGET = 10_000
# A document's score: its best fused chunk plus DOCUMENT_DECAY times its second best (and so on, for the
# first DOCUMENT_CHUNKS chunks), when both retrievers vote. Measured with bench/retrieval.py (file-level
# recall@5 / MRR against the best chunk alone, see README): sqlite-docs 0.857/0.643 -> 0.905/0.742, KJV
# 0.829/0.661 -> 0.854/0.719. With keywords alone (a non-English query) it only rewards long pages that repeat
# the query's words (Italian man pages 0.700 -> 0.575), so a one-retriever ranking keeps the best chunk alone.
DOCUMENT_CHUNKS = 2
DOCUMENT_DECAY = 0.5
_STOPWORD_TEXT = """
a an and are as at be but by can did do does for from had has have how i if in into is it its me my no not of
on or our she so than that the their them then there these they this to was we were what when where which who
why will with would you your should could about
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# all-MiniLM-L6-v2 is English-only: on Italian man pages its vectors alone found 0.275 of the answers in the
# top 5 and BM25 alone 0.700 (bench/retrieval.py), so a query in another language is ranked by keywords,
# with vectors only breaking ties. A question is taken for English when it has an English function word
# that other languages do not share ("a", "i", "in", "do", "me", "come" are Italian words too).
_ENGLISH_TEXT = """
the is are was were be been how what which where when why who whom does did my you your we our of to and
with for from by this that these those it its there their should could would can will shall have has had an
"""
_ENGLISH = frozenset(_ENGLISH_TEXT.split())


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    source: str  # the file's path
    title: str
    location: str  # page, heading path, line range or message subject
    page: int | None
    heading: str
    text: str
    score: float  # its document's fused RRF score: higher is better, only comparable within one result list
    similarity: float | None  # cosine to the query, when the chunk has a vector yet
    keyword: bool  # matched the BM25 query
    terms_matched: float  # share of the query's content words that occur in this chunk

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _VectorIndex:
    def __init__(self) -> None:
        self.generation = -1
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    def refresh(self, docs: Documents, model: str) -> None:
        generation = docs.vectors_generation()
        if generation == self.generation:
            return
        ids, blobs = docs.all_vectors(model)
        order = np.argsort(np.asarray(ids, dtype=np.int64))
        self.ids = np.asarray(ids, dtype=np.int64)[order]
        self.matrix = np.ascontiguousarray(from_blobs(blobs)[order])
        self.generation = generation


class Searcher:
    """Keeps the vector cache; one per process (per store). Use from the thread owning the connection."""

    def __init__(self, db: Callable[[], Database], embedder: Embedder | None = None) -> None:
        self.docs = Documents(db)
        self._db = db
        self._embedder = embedder
        self._index = _VectorIndex()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def search(
        self, query: str, k: int = 5, per_document: int = 1, query_vector: np.ndarray | None = None
    ) -> list[Hit]:
        """The k best hits for `query`; `query_vector` skips embedding the query (benchmarks, callers that batch)."""
        terms = _terms(query)
        keyword_ids = self.keyword(terms, CANDIDATES)
        self._index.refresh(self.docs, MODEL_NAME)
        sims: np.ndarray | None = None
        semantic_ids: list[int] = []
        if len(self._index.ids):
            qv = query_vector if query_vector is not None else self.embedder.embed_query(query)
            with _single_blas_thread():
                sims = self._index.matrix @ np.asarray(qv, dtype=np.float32)
            n = min(CANDIDATES, len(sims))
            top = np.argpartition(sims, len(sims) - n)[-n:]
            semantic_ids = self._index.ids[top[np.argsort(-sims[top])]].tolist()
        vector_weight = FUSION_WEIGHTS["vector"] if looks_english(query) else 0.0
        fused: dict[int, float] = {}
        for ranked, weight in ((keyword_ids, FUSION_WEIGHTS["keyword"]), (semantic_ids, vector_weight)):
            for rank, cid in enumerate(ranked, start=1):
                fused[cid] = fused.get(cid, 0.0) + weight / (RRF_K + rank)
        rows = self.docs.chunk_rows(list(fused))
        by_doc: dict[int, list[int]] = {}
        for cid in sorted(fused, key=lambda c: -fused[c]):
            if cid in rows:  # else deleted since the cache was built
                by_doc.setdefault(rows[cid]["document_id"], []).append(cid)
        both_voted = vector_weight > 0 and bool(semantic_ids) and bool(keyword_ids)
        depth = DOCUMENT_CHUNKS if both_voted else 1
        doc_score = {
            doc: sum(fused[c] * DOCUMENT_DECAY**j for j, c in enumerate(cids[:depth])) for doc, cids in by_doc.items()
        }
        keyword_set = set(keyword_ids)
        hits: list[Hit] = []
        for doc in sorted(by_doc, key=lambda d: -doc_score[d]):
            for cid in by_doc[doc][:per_document]:
                row = rows[cid]
                hits.append(
                    Hit(
                        chunk_id=cid,
                        document_id=doc,
                        source=row["path"],
                        title=row["title"],
                        location=row["location"],
                        page=row["page"],
                        heading=row["heading"],
                        text=row["text"],
                        score=round(doc_score[doc], 6),
                        similarity=self._similarity(sims, cid),
                        keyword=cid in keyword_set,
                        terms_matched=_coverage(terms, row["heading"] + "\n" + row["text"]),
                    )
                )
                if len(hits) >= k:
                    return hits
        return hits

    def keyword(self, terms: list[str], limit: int) -> list[int]:
        """Chunk ids ranked by BM25 (text weighted over heading), for any of the terms."""
        terms = self._affordable(terms)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = (
            self._db()
            .execute(
                """SELECT rowid FROM doc_chunks_fts WHERE doc_chunks_fts MATCH ?
               ORDER BY bm25(doc_chunks_fts, ?, ?) LIMIT ?""",
                [match, *BM25_WEIGHTS, limit],
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def _affordable(self, terms: list[str]) -> list[str]:
        """The rarest terms whose postings fit POSTINGS_BUDGET (at least one), via FTS5's own vocabulary.

        Query words are stemmed by a temp FTS5 table with the same tokenizer (temp_store is MEMORY, so the
        query never touches disk), then looked up in an fts5vocab view of the chunk index.
        """
        if len(terms) <= 1:
            return terms
        db = self._db()
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.doc_vocab USING fts5vocab(main, doc_chunks_fts, row)")
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.doc_query USING fts5(x, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.doc_query_vocab USING fts5vocab(temp, doc_query, instance)")
        db.execute("DELETE FROM temp.doc_query")
        db.conn.executemany("INSERT INTO temp.doc_query (rowid, x) VALUES (?, ?)", list(enumerate(terms)))
        stems = db.execute("SELECT doc, term FROM temp.doc_query_vocab").fetchall()
        db.execute("DELETE FROM temp.doc_query")
        marks = ",".join("?" * len(stems))
        df = dict(db.execute(f"SELECT term, doc FROM temp.doc_vocab WHERE term IN ({marks})", [t for _, t in stems]))
        cost = [0] * len(terms)
        for i, stem in stems:
            cost[i] += df.get(stem, 0)
        kept: list[str] = []
        total = 0
        for i in sorted(range(len(terms)), key=cost.__getitem__):
            if kept and total + cost[i] > POSTINGS_BUDGET:
                break
            kept.append(terms[i])
            total += cost[i]
        return kept

    def _similarity(self, sims: np.ndarray | None, cid: int) -> float | None:
        if sims is None:
            return None
        pos = int(np.searchsorted(self._index.ids, cid))
        if pos < len(self._index.ids) and self._index.ids[pos] == cid:
            return round(float(sims[pos]), 4)
        return None


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _single_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the matrix-vector product: it is memory-bound, and on a busy CPU (the chat model
    generating, an ingest running) OpenBLAS's second thread made search p50 1.5x slower (76 vs 117 ms
    measured at 100k chunks under load)."""
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext()


def _terms(query: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 1 or w.isdigit()]
    content = [w for w in words if w not in _STOPWORDS]
    return list(dict.fromkeys(content or words))


def looks_english(query: str) -> bool:
    """True unless the query has three or more words and none of them is an English function word."""
    words = re.findall(r"[^\W\d_]+", query.lower())
    return len(words) < 3 or any(w in _ENGLISH for w in words)


def _coverage(terms: list[str], text: str) -> float:
    if not terms:
        return 0.0
    lower = text.lower()
    return round(sum(t[: max(4, len(t) - 2)] in lower for t in terms) / len(terms), 3)  # crude stem match


def search(store: Any, query: str, k: int = 5, per_document: int = 1) -> list[Hit]:
    """Search a Store's documents: `store.search(...)`, kept for callers of the module function."""
    result: list[Hit] = store.search(query, k=k, per_document=per_document)
    return result
