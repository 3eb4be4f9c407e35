"""Cutting parsed documents into ~1,000-character chunks that never straddle a section.

A chunk stays inside one section (a page, the text under one heading, one message) so its citation is
exact. Inside a section text is packed sentence by sentence, and consecutive chunks share up to
`overlap` characters of whole sentences, so an answer split across a boundary is still found whole once.
Plain text and code get line ranges as their location.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from storage.parsers.model import ParsedDoc, Section

TARGET_CHARS = 1000  # ~250 word pieces: inside MiniLM's 256-token window, so nothing is truncated away
OVERLAP_CHARS = 150
# Sentence ends and line ends: packing whole lines keeps code and tables intact, and wrapped prose simply
# packs line by line.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+|\n")


@dataclass(frozen=True)
class Chunk:
    seq: int  # order within its document
    text: str
    heading: tuple[str, ...]
    page: int | None
    location: str  # what a citation shows: "p. 3", "Setup > Linux", "lines 10-42"

    def embed_text(self) -> str:
        """What the embedder sees: the heading path gives a passage the context its text leaves implicit."""
        return (" > ".join(self.heading) + "\n" + self.text) if self.heading else self.text


def chunk_document(doc: ParsedDoc, target: int = TARGET_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    out: list[Chunk] = []
    for section in doc.sections:
        for start, end in _pack(section.text, target, overlap):
            text = section.text[start:end].strip()
            if text:
                out.append(Chunk(len(out), text, section.heading, section.page, _location(section, start, end)))
    return out


def _location(section: Section, start: int, end: int) -> str:
    if section.location:
        return section.location
    if section.ocr:  # recognised text: its lines are the OCR's, so a line range would mean nothing
        return "OCR" if section.page is None else f"p. {section.page} (OCR)"
    if section.page is not None:
        return f"p. {section.page}"
    if section.heading:
        return " > ".join(section.heading)
    first = section.text.count("\n", 0, start) + 1
    last = first + section.text.count("\n", start, max(start, end - 1))
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _pack(text: str, target: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Greedy packing of sentence spans into windows of at most `target` chars, with sentence overlap."""
    units = list(_units(text, target))
    if not units:
        return
    i = 0
    while i < len(units):
        start = units[i][0]
        j = i
        while j + 1 < len(units) and units[j + 1][1] - start <= target:
            j += 1
        end = units[j][1]
        yield start, end
        if j + 1 >= len(units):
            return
        # Next window starts at the earliest sentence that fits in the overlap, but always moves forward.
        k = j
        while k > i + 1 and end - units[k - 1][0] <= overlap:
            k -= 1
        i = k if end - units[k][0] <= overlap and k > i else j + 1


def _units(text: str, target: int) -> Iterator[tuple[int, int]]:
    """Sentence-ish spans; anything longer than `target` is cut at a newline or space, else hard."""
    pos = 0
    bounds = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for b in bounds:
        if b <= pos:
            continue
        yield from _split_long(text, pos, b, target)
        pos = b


def _split_long(text: str, start: int, end: int, target: int) -> Iterator[tuple[int, int]]:
    while end - start > target:
        window = text[start : start + target]
        cut = window.rfind("\n")
        if cut <= target // 2:
            cut = window.rfind(" ")
        cut = start + (cut + 1 if cut > target // 2 else target)
        yield start, cut
        start = cut
    if text[start:end].strip():
        yield start, end
