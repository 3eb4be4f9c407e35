"""What every parser returns: documents made of sections that remember where they came from.

A section is the unit a citation points at (a PDF page, the text under a heading, one mail message), so
parsers keep structure and the chunker never has to guess it back from flat text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.errors import KnownError


class ParseError(KnownError):
    """A file Hearth cannot read; the message names the reason, never the file's content."""


@dataclass(frozen=True)
class Section:
    """A run of text with one location: a heading path, a page, or neither."""

    text: str
    heading: tuple[str, ...] = ()
    page: int | None = None  # 1-based, PDFs only


@dataclass
class ParsedDoc:
    """One document: a whole file, or one message of a mailbox (`part` tells them apart)."""

    title: str
    sections: list[Section]
    part: str = ""  # "" for the whole file; "msg-3" for the fourth message of an mbox
    meta: dict[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not any(s.text.strip() for s in self.sections)
