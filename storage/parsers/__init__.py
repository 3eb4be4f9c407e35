"""File parsers: bytes in, structured documents out, or a `ParseError` naming a specific reason.

`parse(name, data)` dispatches on the extension. Parsers work on bytes already read (the ingester hashes
the same bytes), and never write temp files: nothing of the user's leaves memory except into the
encrypted store.
"""

from __future__ import annotations

from pathlib import PurePath

from storage.parsers.model import MAX_TEXT_CHARS, ParsedDoc, ParseError, Section, over_text_cap

_CODE_WORDS = """
.py .pyi .js .mjs .cjs .ts .tsx .jsx .java .kt .kts .scala .c .h .cc .cpp .cxx .hpp .hh .cs .go .rs .rb .php
.swift .m .mm .sh .bash .zsh .fish .ps1 .sql .r .lua .pl .pm .hs .ml .ex .exs .erl .clj .dart .jl .vue
.svelte .css .scss .less .toml .yaml .yml .json .ini .cfg .conf .xml .tex .el .vim .dockerfile .gradle .cmake .mk
"""
CODE_SUFFIXES = frozenset(_CODE_WORDS.split())
TEXT_SUFFIXES = frozenset({".txt", ".text", ".log", ".org", ".adoc"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})  # read by OCR
SUFFIXES = (
    TEXT_SUFFIXES
    | CODE_SUFFIXES
    | IMAGE_SUFFIXES
    | {".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".pdf", ".docx", ".odt", ".eml", ".mbox", ".csv", ".tsv"}
)

__all__ = ["SUFFIXES", "ParseError", "ParsedDoc", "Section", "is_supported", "kind_of", "parse"]


def is_supported(name: str | PurePath) -> bool:
    p = PurePath(name)
    return p.suffix.lower() in SUFFIXES or p.name in ("Makefile", "Dockerfile", "README", "LICENSE")


def kind_of(name: str | PurePath) -> str:
    """A short format label for listings: pdf, docx, markdown, code, text, ..."""
    suffix = PurePath(name).suffix.lower()
    named = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".htm": "html", ".xhtml": "html",
             ".tsv": "csv"}  # fmt: skip
    if suffix in named:
        return named[suffix]
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TEXT_SUFFIXES or not suffix:
        return "text"
    return suffix.lstrip(".")


def parse(name: str | PurePath, data: bytes) -> list[ParsedDoc]:
    """Parse one file's bytes. Raises ParseError with a reason fit for the ingest summary."""
    from storage.parsers import mail, markup, ocr, office, pdf, text

    if not data:
        raise ParseError("empty file (0 bytes)")
    title = PurePath(name).name
    kind = kind_of(name)
    from_bytes = {"pdf": pdf.parse_pdf, "docx": office.parse_docx, "odt": office.parse_odt,
                  "eml": mail.parse_eml, "mbox": mail.parse_mbox, "image": ocr.parse_image}  # fmt: skip
    from_text = {"markdown": text.parse_markdown, "rst": text.parse_rst, "html": markup.parse_html,
                 "csv": text.parse_csv}  # fmt: skip
    if kind in from_bytes:
        docs = from_bytes[kind](data, title)
    else:
        if len(data) > 4 * MAX_TEXT_CHARS:  # UTF-8 spends at most 4 bytes a character: over, whatever it holds
            raise over_text_cap(len(data) // 4)
        decoded = text.decode(data)
        if len(decoded) > MAX_TEXT_CHARS:  # refused before a format parser walks it
            raise over_text_cap(len(decoded))
        docs = from_text.get(kind, text.parse_plain)(decoded, title)
    docs = [d for d in docs if not d.is_empty()]
    if not docs:
        raise ParseError("no text found in the file")
    chars = sum(len(s.text) for d in docs for s in d.sections)
    if chars > MAX_TEXT_CHARS:
        raise over_text_cap(chars)
    return docs
