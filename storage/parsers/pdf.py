"""PDF: one section per page, so every citation can name its page."""

from __future__ import annotations

import io
import logging

from storage.parsers.model import MAX_PAGE_CHARS, MAX_TEXT_CHARS, ParsedDoc, ParseError, Section, over_text_cap

MAX_PAGES = 5_000  # a bound on work per file; real books stay well under it
# pypdf parses a page's whole content stream before it yields any text, at ~13 k operators/s here, so a
# text bomb must be refused by counting its text-showing operators first. A dense page set glyph by glyph
# shows ~3 k runs; 20 k bounds a page's parse to ~1.5 s.
MAX_PAGE_TEXT_OPS = 20_000


def parse_pdf(data: bytes, title: str) -> list[ParsedDoc]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF" not in data[:1024]:
        raise ParseError("corrupt PDF (no PDF header)")
    # pypdf logs recoverable damage at WARNING with object details; keep those out of Hearth's logs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")  # many "protected" PDFs only restrict printing, with an empty password
            except (NotImplementedError, PdfReadError) as exc:
                raise ParseError("encrypted PDF (password protected)") from exc
            if not ok:
                raise ParseError("encrypted PDF (password protected)")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise ParseError(f"PDF has {len(pages)} pages, over the {MAX_PAGES}-page limit")
        sections = []
        total = 0
        for n, page in enumerate(pages, start=1):
            text = _page_text(page, n).strip()
            total += len(text)
            if total > MAX_TEXT_CHARS:
                raise over_text_cap(total)
            if text:
                sections.append(Section(text, page=n))
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except ParseError:
        raise
    except FileNotDecryptedError as exc:
        raise ParseError("encrypted PDF (password protected)") from exc
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            RecursionError, AssertionError, ZeroDivisionError, OverflowError) as exc:  # fmt: skip
        # pypdf's parsing of hostile input raises a zoo of builtins besides its own errors.
        raise ParseError(f"corrupt PDF ({type(exc).__name__})") from exc
    if not sections:
        raise ParseError("PDF has no extractable text (scanned images? OCR is not supported)")
    return [ParsedDoc(title=meta_title or title, sections=sections)]


def _page_text(page: object, number: int) -> str:
    """A page's text, refused before parsing when it shows text too often, and abandoned as soon as it
    passes MAX_PAGE_CHARS (text drawn through form XObjects does not show in the page's own stream)."""
    contents = page.get_contents()  # type: ignore[attr-defined]
    if contents is not None:
        ops = contents.get_data()
        if ops.count(b"Tj") + ops.count(b"TJ") > MAX_PAGE_TEXT_OPS:
            raise ParseError(f"PDF page {number} draws text over {MAX_PAGE_TEXT_OPS:,} times (a text bomb?)")
    produced = 0

    def count(text: str, *_: object) -> None:
        nonlocal produced
        produced += len(text)
        if produced > MAX_PAGE_CHARS:
            raise ParseError(f"PDF page {number} expands to over {MAX_PAGE_CHARS:,} characters (a text bomb?)")

    return page.extract_text(visitor_text=count) or ""  # type: ignore[attr-defined]
