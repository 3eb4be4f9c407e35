"""Turning the files attached to one chat into the prompt block its replies are written from.

Files that fit their share of the context window go in whole, in the order they were attached: the user
attached them to be read, so nothing is left out that fits. When they do not fit, their passages most
similar to the question are picked (storage.attachments.rank) until the budget is spent, then shown in
file order, so the model reads a file's parts as they run. Unlike document grounding there is no relevance
floor: "summarise this" is dissimilar to every passage, and the user chose these files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from storage.attachments import Attachment, Embeds, Passage, rank

# Share of the context window the attached files may take (with documents on too, each gets half).
ATTACHMENT_SHARE = 0.5
HEADER = (
    "The user attached these files to this conversation. Answer from them when the question is about them, "
    "and name the file you used."
)
MIN_PASSAGE_TOKENS = 24  # a passage cut shorter than this is noise


def build_block(
    attachments: Sequence[Attachment],
    question: str,
    budget: int,
    count_tokens: Callable[[str], int],
    embedder: Callable[[], Embeds],
) -> tuple[str, list[dict[str, Any]], list[Passage]]:
    """(prompt block, sources, passages that got new vectors); ("", [], []) without attachments.

    `embedder` is called only when the files do not fit whole (loading the model costs seconds).
    """
    if not attachments:
        return "", [], []
    whole = HEADER + "".join(f"\n\n--- {a.name} ---\n{a.text}" for a in attachments)
    if count_tokens(whole) <= budget:
        sources = [{"source": a.name, "location": "whole file", "attached": True} for a in attachments]
        return whole, sources, []
    owner = {id(p): a for a in attachments for p in a.passages}
    passages = [p for a in attachments for p in a.passages]
    fresh = [p for p in passages if p.vector is None]
    ranked = rank(passages, question, embedder())
    chosen: list[Passage] = []
    used = count_tokens(HEADER)
    for passage, _similarity in ranked:
        cost = count_tokens(_piece(owner[id(passage)], passage)) + 2
        if used + cost > budget:
            if budget - used < MIN_PASSAGE_TOKENS:
                break
            continue  # a shorter passage further down may still fit
        chosen.append(passage)
        used += cost
    order = {id(p): i for i, p in enumerate(passages)}
    chosen.sort(key=lambda p: order[id(p)])
    block = HEADER + "".join("\n\n" + _piece(owner[id(p)], p) for p in chosen)
    sources = [{"source": owner[id(p)].name, "location": p.location, "attached": True} for p in chosen]
    return block, sources, fresh


def _piece(attachment: Attachment, passage: Passage) -> str:
    return f"--- {attachment.name} ({passage.location}) ---\n{passage.text}"
