"""PDF: one section per page, so every citation can name its page."""

from __future__ import annotations

import io
import logging

from storage.parsers.model import ParsedDoc, ParseError, Section

MAX_PAGES = 5_000  # a bound on work per file; real books stay well under it


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
        for n, page in enumerate(pages, start=1):
            text = (page.extract_text() or "").strip()
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
