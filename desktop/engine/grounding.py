"""Turning retrieved passages into the prompt block a grounded answer is written from.

Passages are numbered `[1]`, `[2]`, ... with their file and page/section so the model can cite them and
the front end can list the same sources under the answer. The block is sized to a token budget (the
model's context minus the conversation and the reply), trimming the last passage that only partly fits
instead of dropping it. Hits that are not relevant (low cosine similarity, or for chunks not embedded
yet, few of the query's words) are left out; when none remain, the model gets a note saying the documents
hold nothing relevant, so it says so instead of answering from noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import Any, Protocol

MIN_SIMILARITY = 0.30  # all-MiniLM-L6-v2: unrelated passages score ~0.0-0.25, answers ~0.4-0.8
MIN_TERMS_MATCHED = 0.5  # for keyword-only hits (vectors still being computed)
MIN_PASSAGE_TOKENS = 32  # a trimmed passage shorter than this is noise, not context

HEADER = (
    "Passages from the user's documents follow. Answer from them and cite each passage you use by its "
    "number in square brackets, like [1]. If they do not contain the answer, say so."
)
NOTHING_RELEVANT = (
    "The user's documents were searched and nothing relevant to this question was found. Say that their "
    "documents do not cover it; do not invent sources or citations."
)


class HitLike(Protocol):
    """What grounding reads of a `storage.search.Hit` (read-only, so the frozen dataclass matches)."""

    @property
    def chunk_id(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def page(self) -> int | None: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def similarity(self) -> float | None: ...
    @property
    def terms_matched(self) -> float: ...


def is_relevant(hit: HitLike, min_similarity: float = MIN_SIMILARITY) -> bool:
    if hit.similarity is not None:
        return hit.similarity >= min_similarity
    return hit.terms_matched >= MIN_TERMS_MATCHED


def build_context(
    hits: Sequence[HitLike],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    min_similarity: float = MIN_SIMILARITY,
) -> tuple[str, list[dict[str, Any]]]:
    """(prompt block, sources): numbered passages within `budget_tokens`, or the nothing-relevant note."""
    kept = [h for h in hits if is_relevant(h, min_similarity)]
    if not kept:
        return NOTHING_RELEVANT, []
    block = HEADER
    sources: list[dict[str, Any]] = []
    for hit in kept:
        n = len(sources) + 1
        label = f"[{n}] {PurePath(hit.source).name} ({hit.location})"
        piece = f"\n\n{label}\n{hit.text.strip()}"
        if count_tokens(block + piece) <= budget_tokens:
            block += piece
        else:
            trimmed = _trim_to_fit(block, label, hit.text.strip(), budget_tokens, count_tokens)
            if trimmed is None:
                break
            block += trimmed
        sources.append(
            {
                "n": n,
                "source": hit.source,
                "title": hit.title,
                "location": hit.location,
                "page": hit.page,
                "chunk_id": hit.chunk_id,
                "score": hit.score,
                "similarity": hit.similarity,
                "excerpt": hit.text.strip(),  # the passage itself, for the window's "show source"
            }
        )
        if count_tokens(block) >= budget_tokens - MIN_PASSAGE_TOKENS:
            break
    if not sources:
        return NOTHING_RELEVANT, []  # not even the header and one short passage fit the budget
    return block, sources


def _trim_to_fit(block: str, label: str, text: str, budget: int, count_tokens: Callable[[str], int]) -> str | None:
    """The longest word-boundary prefix of `text` that fits, or None if under MIN_PASSAGE_TOKENS would."""
    lo, hi, best = 0, len(text), None
    while lo <= hi:  # binary search on characters; count_tokens is monotone enough for this
        mid = (lo + hi) // 2
        cut = text[:mid].rsplit(" ", 1)[0] if mid < len(text) else text
        piece = f"\n\n{label}\n{cut} ..."
        if count_tokens(block + piece) <= budget:
            best, lo = piece, mid + 1
        else:
            hi = mid - 1
    if best is None or count_tokens(best) < MIN_PASSAGE_TOKENS:
        return None
    return best
