"""Fusion, per-document de-duplication and cache invalidation, on a real store with known vectors.

Vectors here are hand-made unit vectors (real data of the right shape), passed with `query_vector`, so
the ranking logic is tested exactly without the model.
"""

from __future__ import annotations

import numpy as np

from storage.chunking import chunk_document
from storage.documents import Documents
from storage.embeddings import DIM, MODEL_NAME, to_blob
from storage.parsers.model import ParsedDoc, Section
from storage.search import Searcher, _terms


def _axis(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def _add(docs: Documents, path: str, sections: list[str]) -> None:
    doc = ParsedDoc(path, [Section(t, heading=(f"S{i}",)) for i, t in enumerate(sections)])
    docs.replace_file(path, "text", path, 1, 0.0, [(doc, chunk_document(doc))])


def _ids(store, path: str) -> list[int]:  # type: ignore[no-untyped-def]
    rows = store.db.execute(
        """SELECT c.id FROM doc_chunks c JOIN documents d ON d.id = c.document_id
           JOIN doc_files f ON f.id = d.file_id WHERE f.path = ? ORDER BY c.seq""",
        [path],
    )
    return [r[0] for r in rows.fetchall()]


def test_terms_drop_stopwords_but_keep_something() -> None:
    assert _terms("How often should I water the tomatoes?") == ["often", "water", "tomatoes"]
    assert _terms("what is it") == ["what", "is", "it"]


def test_fusion_dedup_and_cache_invalidation(store) -> None:  # type: ignore[no-untyped-def]
    docs = Documents(lambda: store.db)
    _add(docs, "/a.txt", ["alpha zebra crossing", "alpha zebra stripes", "unrelated words"])
    _add(docs, "/b.txt", ["beta giraffe neck"])
    _add(docs, "/c.txt", ["gamma okapi forest"])
    a = _ids(store, "/a.txt")
    b = _ids(store, "/b.txt")
    c = _ids(store, "/c.txt")
    searcher = Searcher(lambda: store.db)
    # Keyword only (no vectors yet): both zebra chunks match, but one hit per document.
    hits = searcher.search("zebra", k=5, query_vector=_axis(0))
    assert [h.source for h in hits] == ["/a.txt"]
    assert searcher.search("zebra", k=5, per_document=2, query_vector=_axis(0))[1].chunk_id in a
    # Vectors: /c.txt is the nearest to axis 2; /b.txt matches the keyword; fusion returns both.
    docs.add_vectors(MODEL_NAME, [(a[0], to_blob(_axis(0))), (b[0], to_blob(_axis(1))), (c[0], to_blob(_axis(2)))])
    hits = searcher.search("giraffe", k=3, query_vector=_axis(2))
    assert [h.source for h in hits][:2] in (["/b.txt", "/c.txt"], ["/c.txt", "/b.txt"])
    by_source = {h.source: h for h in hits}
    assert by_source["/b.txt"].keyword and by_source["/b.txt"].similarity == 0.0
    assert not by_source["/c.txt"].keyword and by_source["/c.txt"].similarity == 1.0
    # A chunk first in both lists beats chunks first in only one.
    docs.add_vectors(MODEL_NAME, [(b[0], to_blob(_axis(2)))])  # replace: /b.txt now also nearest
    top = searcher.search("giraffe", k=1, query_vector=_axis(2))[0]
    assert top.source == "/b.txt" and top.similarity == 1.0
    # Re-indexing a file drops its old chunks and vectors; the cache notices.
    _add(docs, "/b.txt", ["beta giraffe neck, rewritten"])
    hits = {h.source: h for h in searcher.search("giraffe", k=3, query_vector=_axis(2))}
    assert hits["/c.txt"].similarity == 1.0
    assert hits["/b.txt"].similarity is None and "rewritten" in hits["/b.txt"].text


def test_common_words_are_dropped_within_the_postings_budget(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import storage.search as search_mod

    docs = Documents(lambda: store.db)
    for i in range(30):
        _add(docs, f"/common{i}.txt", [f"the common word appears here, number {i}"])
    _add(docs, "/rare.txt", ["a rareword and the common word together"])
    searcher = Searcher(lambda: store.db)
    monkeypatch.setattr(search_mod, "POSTINGS_BUDGET", 5)
    ids = searcher.keyword(["common", "rareword"], 50)
    assert ids == _ids(store, "/rare.txt")  # only the rare term was affordable
    monkeypatch.setattr(search_mod, "POSTINGS_BUDGET", 1000)
    assert len(searcher.keyword(["common", "rareword"], 50)) == 31
    assert searcher._affordable(["commons"]) == ["commons"]  # a single term is always kept


def test_language_of_a_query() -> None:
    from storage.search import looks_english

    assert looks_english("How do I rename a column of an existing table?")
    assert looks_english("I deleted half my data but the file is still huge")
    assert looks_english("sqlite wal")  # too short to tell: both retrievers
    assert not looks_english("Come faccio a impedire che un pacchetto venga aggiornato?")
    assert not looks_english("Dove aggiungo un repository da cui scaricare i pacchetti?")
    assert not looks_english("Comment changer le mot de passe d'un utilisateur ?")


def test_a_query_in_another_language_is_ranked_by_keywords(store) -> None:  # type: ignore[no-untyped-def]
    """The English-only embedder's nearest chunk must not outrank a keyword match for an Italian query."""
    docs = Documents(lambda: store.db)
    _add(docs, "/utenti.txt", ["useradd crea un nuovo utente del sistema"])
    _add(docs, "/other.txt", ["del tutto diverso"])
    [utenti], [other] = _ids(store, "/utenti.txt"), _ids(store, "/other.txt")
    docs.add_vectors(MODEL_NAME, [(utenti, to_blob(_axis(0))), (other, to_blob(_axis(1)))])
    searcher = Searcher(lambda: store.db)
    italian = searcher.search("come creo un nuovo utente", k=2, query_vector=_axis(1))
    assert [h.source for h in italian] == ["/utenti.txt", "/other.txt"]
    assert italian[1].score == 0.0  # a vector-only hit adds nothing for a non-English query
    english = searcher.search("what is a nuovo utente for", k=2, query_vector=_axis(1))
    assert english[1].score > 0.0


def test_a_document_both_retrievers_find_through_different_chunks_ranks_first(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """/a.txt's keyword chunk and its vector chunk are each second; /b.txt is first by keywords alone."""
    import storage.search as search_mod

    docs = Documents(lambda: store.db)
    _add(docs, "/a.txt", ["the zebra herd", "grazing on the savanna"])
    _add(docs, "/b.txt", ["zebra zebra"])
    _add(docs, "/c.txt", ["lions at rest"])
    a, [b], [c] = _ids(store, "/a.txt"), _ids(store, "/b.txt"), _ids(store, "/c.txt")
    near = _axis(0) * 0.9 + _axis(3) * 0.1
    slight = _axis(1) + _axis(0) * 0.01
    docs.add_vectors(
        MODEL_NAME,
        [
            (a[0], to_blob(_axis(2))),
            (a[1], to_blob(near / np.linalg.norm(near))),
            (b, to_blob(slight / np.linalg.norm(slight))),
            (c, to_blob(_axis(0))),
        ],
    )
    searcher = Searcher(lambda: store.db)
    hits = searcher.search("zebra", k=3, query_vector=_axis(0))
    assert [h.source for h in hits] == ["/a.txt", "/b.txt", "/c.txt"]
    assert hits[0].chunk_id == a[0] and hits[0].score > hits[1].score  # its best chunk, scored as a document
    monkeypatch.setattr(search_mod, "DOCUMENT_CHUNKS", 1)  # best chunk alone: keyword-first /b.txt wins
    assert [h.source for h in searcher.search("zebra", k=3, query_vector=_axis(0))] == ["/b.txt", "/a.txt", "/c.txt"]
