"""PDF: one section per page, so every citation can name its page; scanned pages go through OCR."""

from __future__ import annotations

import io
import logging
from typing import Any

from storage.parsers import ocr
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
        scanned = 0
        for n, page in enumerate(pages, start=1):
            text = _page_text(page, n).strip()
            recognised = False
            if not text and _has_images(page) and ocr.available():
                scanned += 1
                if scanned > ocr.MAX_OCR_PAGES:
                    raise ParseError(f"PDF has over {ocr.MAX_OCR_PAGES} scanned pages to OCR (the per-file limit)")
                text, recognised = _scanned_text(page, n).strip(), True
            total += len(text)
            if total > MAX_TEXT_CHARS:
                raise over_text_cap(total)
            if text:
                sections.append(Section(text, page=n, ocr=recognised))
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
        if scanned:
            raise ParseError("PDF has no text, and OCR recognised none in its scanned pages")
        if any(_has_images(p) for p in pages):
            raise ParseError("PDF has no text layer (its scanned pages need OCR, which this installation lacks)")
        raise ParseError("PDF has no extractable text (no text layer and no scanned images)")
    return [ParsedDoc(title=meta_title or title, sections=sections)]


def _images(page: Any) -> list[Any]:
    """The page's image XObjects (not those of nested forms: scanners put the page image at the top)."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return []
    found = [x.get_object() for x in xobjects.get_object().values()]
    return [x for x in found if x.get("/Subtype") == "/Image"]


def _has_images(page: Any) -> bool:
    return bool(_images(page))


def _scanned_text(page: Any, number: int) -> str:
    """OCR of a page that has images but no text layer: each image's text, largest image first."""
    for image in _images(page):  # refused by their stated size before any is decoded
        ocr.check_pixels(int(image.get("/Width", 0)), int(image.get("/Height", 0)), f"the scan on page {number}")
    pieces = []
    try:
        decoded = [f.image for f in page.images]
    except ParseError:
        raise
    except Exception as exc:  # pypdf's image filters raise a zoo of types on damaged streams
        raise ParseError(f"PDF page {number}: its scanned image cannot be decoded ({type(exc).__name__})") from exc
    for image in sorted(decoded, key=lambda im: -im.width * im.height):
        if image.width * image.height >= 10_000:  # logos and rules carry no text worth a second of OCR
            pieces.append(ocr.image_text(image))
    return "\n".join(p for p in pieces if p)


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
