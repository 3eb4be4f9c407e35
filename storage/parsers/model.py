"""What every parser returns: documents made of sections that remember where they came from.

A section is the unit a citation points at (a PDF page, the text under a heading, one mail message), so
parsers keep structure and the chunker never has to guess it back from flat text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.errors import KnownError

# Caps on extracted text. A file's text is what the user pays for in chunks, vectors and minutes of
# embedding: 10 M characters is ~11,000 chunks (a 4,000-page book; the whole Bible is 4.3 M). A real page
# holds 2-10 k characters even in 6-point type; a PDF page that expands past 200 k is a text bomb (a 5 KiB
# PDF once produced 5 MiB of text in four pages).
MAX_TEXT_CHARS = 10_000_000
MAX_PAGE_CHARS = 200_000


class ParseError(KnownError):
    """A file Hearth cannot read; the message names the reason, never the file's content."""


def over_text_cap(chars: int) -> ParseError:
    return ParseError(f"over the text cap (over {chars / 1e6:.1f} M characters > {MAX_TEXT_CHARS // 10**6} M)")


@dataclass(frozen=True)
class Section:
    """A run of text with one location: a heading path, a page, or neither."""

    text: str
    heading: tuple[str, ...] = ()
    page: int | None = None  # 1-based, PDFs only
    ocr: bool = False  # recognised from an image (a scanned page): citations say so
    location: str = ""  # what a citation shows, where heading and page do not say it ("message 4: ...")


@dataclass
class ParsedDoc:
    """One document: a whole file, or one message of a mailbox (`part` tells them apart)."""

    title: str
    sections: list[Section]
    part: str = ""  # "" for the whole file; "msg-3" for the fourth message of an mbox
    meta: dict[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not any(s.text.strip() for s in self.sections)
