"""The grounding block: numbered sources, within the token budget, or a note when nothing is relevant."""

from __future__ import annotations

from dataclasses import replace

from desktop.engine.grounding import NOTHING_RELEVANT, build_context
from storage.search import Hit


def words(text: str) -> int:
    """A real, monotone token counter: whitespace words."""
    return len(text.split())


def _hit(n: int, text: str, similarity: float | None = 0.6, terms: float = 0.0) -> Hit:
    return Hit(
        chunk_id=n,
        document_id=n,
        source=f"/docs/file{n}.pdf",
        title=f"File {n}",
        location=f"p. {n}",
        page=n,
        heading="",
        text=text,
        score=0.03 - n * 0.001,
        similarity=similarity,
        keyword=terms > 0,
        terms_matched=terms,
    )


def test_numbered_passages_and_sources() -> None:
    block, sources = build_context([_hit(1, "alpha " * 20), _hit(2, "beta " * 20)], 500, words)
    assert "[1] file1.pdf (p. 1)" in block and "[2] file2.pdf (p. 2)" in block
    assert [(s["n"], s["source"], s["location"]) for s in sources] == [
        (1, "/docs/file1.pdf", "p. 1"),
        (2, "/docs/file2.pdf", "p. 2"),
    ]


def test_budget_is_respected_by_trimming_then_stopping() -> None:
    hits = [_hit(i, " ".join(f"w{i}-{j}" for j in range(200))) for i in range(1, 5)]
    for budget in (120, 300, 450):
        block, sources = build_context(hits, budget, words)
        assert words(block) <= budget
        assert len(sources) == block.count("\n[")
    block, sources = build_context(hits, 300, words)
    assert block.rstrip().endswith("...")  # the passage that did not fit was trimmed, not dropped


def test_nothing_relevant_gives_the_note() -> None:
    weak = [_hit(1, "unrelated text", similarity=0.12), _hit(2, "more noise", similarity=None, terms=0.2)]
    assert build_context(weak, 500, words) == (NOTHING_RELEVANT, [])
    assert build_context([], 500, words) == (NOTHING_RELEVANT, [])


def test_keyword_only_hits_count_when_most_words_match() -> None:
    hit = _hit(1, "the derailleur cost 45 dollars", similarity=None, terms=1.0)
    block, sources = build_context([hit, replace(hit, chunk_id=2, similarity=0.1)], 500, words)
    assert len(sources) == 1 and "derailleur" in block


def test_budget_too_small_for_any_passage_gives_the_note() -> None:
    assert build_context([_hit(1, "word " * 100)], 20, words) == (NOTHING_RELEVANT, [])
