"""Word-processor files (.docx, .odt): headings kept, zip bombs refused before any XML is inflated.

Both formats are zip archives; the central directory states each member's uncompressed size, so a bomb is
caught by reading that directory alone, never by decompressing.
"""

from __future__ import annotations

import io
import re
import zipfile

from storage.parsers.model import ParsedDoc, ParseError, Section

MAX_UNCOMPRESSED = 200 * 1024 * 1024  # far beyond any real document's XML, far below a bomb's
MAX_RATIO = 150  # deflate tops out near 1000:1 only on degenerate input; real XML is ~5-20:1
MAX_MEMBERS = 10_000


def check_zip(data: bytes, kind: str) -> None:
    """Refuse archives that are not zips, or whose stated sizes or ratios look like a zip bomb."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(f"corrupt {kind} file (not a valid zip archive)") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ParseError(f"refused {kind}: {len(infos)} archive members looks like a zip bomb")
        total = sum(i.file_size for i in infos)
        if total > MAX_UNCOMPRESSED:
            raise ParseError(f"refused {kind}: it would inflate to {total // 2**20} MB (zip bomb?)")
        for info in infos:
            if info.file_size > 1_000_000 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                ratio = info.file_size // max(info.compress_size, 1)
                raise ParseError(f"refused {kind}: a member compresses {ratio}:1 (zip bomb?)")


def parse_docx(data: bytes, title: str) -> list[ParsedDoc]:
    check_zip(data, "DOCX")
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, AttributeError, TypeError, zipfile.BadZipFile) as exc:
        # AttributeError/TypeError: python-docx walking a package whose parts lack the expected elements
        # (e.g. a [Content_Types].xml without its namespace); the file is corrupt, not the parser broken.
        raise ParseError("corrupt DOCX file (missing or invalid document parts)") from exc
    except Exception as exc:  # lxml raises its own XMLSyntaxError family on broken parts
        if type(exc).__module__.startswith("lxml"):
            raise ParseError("corrupt DOCX file (malformed XML)") from exc
        raise
    props_title = (document.core_properties.title or "").strip()
    builder = _Builder()
    for block in _docx_blocks(document):
        level, text = block
        if level:
            builder.heading(level, text)
        else:
            builder.text(text)
    return [ParsedDoc(title=props_title or builder.first_heading() or title, sections=builder.done())]


def _docx_blocks(document: object) -> list[tuple[int, str]]:
    """Paragraphs and table rows in body order, with the heading level of `Heading N`/`Title` styles."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    out: list[tuple[int, str]] = []
    for item in document.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(item, Paragraph):
            style = (item.style.name if item.style is not None else "") or ""
            m = re.match(r"Heading (\d)", style)
            level = int(m.group(1)) if m else (1 if style == "Title" else 0)
            if item.text.strip():
                out.append((level, item.text.strip()))
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [c.text.strip() for c in row.cells]
                line = " | ".join(dict.fromkeys(c for c in cells if c))  # merged cells repeat their text
                if line:
                    out.append((0, line))
    return out


def parse_odt(data: bytes, title: str) -> list[ParsedDoc]:
    check_zip(data, "ODT")
    from odf import teletype
    from odf.opendocument import load

    try:
        doc = load(io.BytesIO(data))
    except Exception as exc:  # odfpy surfaces zip, KeyError and expat errors alike for broken files
        raise ParseError("corrupt ODT file (could not read its content)") from exc
    builder = _Builder()
    # Walk the tree ourselves: getElementsByType per type would lose the order of headings and paragraphs.
    for el in _walk(doc.text):
        tag = el.qname[1] if hasattr(el, "qname") else ""
        if tag == "h":
            level = int(el.getAttribute("outlinelevel") or 1)
            builder.heading(level, teletype.extractText(el).strip())
        elif tag == "p":
            t = teletype.extractText(el).strip()
            if t:
                builder.text(t)
    return [ParsedDoc(title=builder.first_heading() or title, sections=builder.done())]


def _walk(node: object) -> list[object]:
    """Document-order list of text:h and text:p elements (not descending into them)."""
    out: list[object] = []
    stack = list(reversed(getattr(node, "childNodes", [])))
    while stack:
        el = stack.pop()
        tag = el.qname[1] if hasattr(el, "qname") else ""
        if tag in ("h", "p"):
            out.append(el)
        else:
            stack.extend(reversed(getattr(el, "childNodes", [])))
    return out


class _Builder:
    """Accumulates paragraphs under the current heading path."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.buf: list[str] = []

    def heading(self, level: int, text: str) -> None:
        self._flush()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))

    def text(self, text: str) -> None:
        self.buf.append(text)

    def first_heading(self) -> str:
        return next((s.heading[0] for s in self.sections if s.heading), "")

    def done(self) -> list[Section]:
        self._flush()
        return self.sections

    def _flush(self) -> None:
        if self.buf:
            self.sections.append(Section("\n\n".join(self.buf), tuple(h for _, h in self.path)))
        self.buf = []
