"""Plain-text formats: decoding with encoding detection, and the structure Markdown/reST/CSV carry.

Decoding refuses binary junk instead of indexing mojibake: a NUL byte or many control characters means
"not text", whatever the extension claims.
"""

from __future__ import annotations

import codecs
import csv
import io
import re

from storage.parsers.model import ParsedDoc, ParseError, Section

_CONTROL = {c for c in range(32) if c not in (9, 10, 12, 13)} | {127}
_SNIFF = 64 * 1024  # enough bytes to judge text vs binary without reading big files twice


def decode(data: bytes) -> str:
    """Bytes to str: BOMs first, then strict UTF-8, then charset-normalizer's best guess."""
    if not data:
        raise ParseError("empty file")
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return _checked(data.decode(enc))
            except UnicodeDecodeError as exc:
                raise ParseError(f"undecodable bytes: invalid {enc.upper()} despite its byte-order mark") from exc
    head = data[:_SNIFF]
    if b"\x00" in head:
        raise ParseError("binary data, not text (contains NUL bytes)")
    if sum(b in _CONTROL for b in head) > len(head) * 0.02:
        raise ParseError("binary data, not text (too many control bytes)")
    try:
        return _checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ParseError("undecodable bytes: no text encoding fits this file")
    # Ties are common between Windows code pages on short Latin text; Western cp1252 is by far the most
    # likely on a desktop, so it wins a tie instead of whichever page charset-normalizer listed first.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for m in tied if m.encoding == "cp1252"), best)
    return _checked(str(best))


def _checked(text: str) -> str:
    """Reject decodings that are mostly replacement or control characters."""
    sample = text[:_SNIFF]
    bad = sum(ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f") for ch in sample)
    if sample and bad > len(sample) * 0.02:
        raise ParseError("undecodable bytes: the text is mostly invalid characters")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_plain(text: str, title: str) -> list[ParsedDoc]:
    return [ParsedDoc(title=title, sections=[Section(text)])]


_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str, title: str) -> list[ParsedDoc]:
    """Split at ATX and setext headings (outside code fences); each section keeps its heading path."""
    lines = text.split("\n")
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            sections.append(Section(body, tuple(h for _, h in path)))
        buf.clear()

    def enter(level: int, heading: str) -> None:
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            atx = _atx(line)
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if atx is not None:
                enter(*atx)
                i += 1
                continue
            if line.strip() and re.fullmatch(r"=+\s*|-+\s*", nxt) and not buf_ends_block(buf):
                enter(1 if nxt.startswith("=") else 2, line.strip())
                i += 2
                continue
        buf.append(line)
        i += 1
    flush()
    return [ParsedDoc(title=_first_heading(sections) or title, sections=sections or [Section(text)])]


def _atx(line: str) -> tuple[int, str] | None:
    """An ATX heading's (level, text), found by string operations in linear time: the regex this replaced
    (lazy text, then optional spaces, #s and spaces) backtracked cubically on a line of spaces."""
    level = len(line) - len(line.lstrip("#"))
    if not 1 <= level <= 6 or len(line) == level or line[level] not in " \t":
        return None
    text = line[level:].strip()
    closed = text.rstrip("#")
    if not closed or closed[-1] in " \t":  # a closing run of #s counts only after a space (CommonMark)
        text = closed.strip()
    return level, text


def buf_ends_block(buf: list[str]) -> bool:
    """A setext underline only makes a heading of a single-line paragraph."""
    return bool(buf) and bool(buf[-1].strip())


_RST_ADORN = re.compile(r"^([=\-~^\"'`#*+_.:])\1{2,}\s*$")


def parse_rst(text: str, title: str) -> list[ParsedDoc]:
    """reST headings are underlined (optionally overlined); levels follow the order adornments appear."""
    lines = text.split("\n")
    styles: list[str] = []
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            sections.append(Section(body, tuple(h for _, h in path)))
        buf.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = False
        if _RST_ADORN.match(line) and i + 2 < len(lines) and _RST_ADORN.match(lines[i + 2]) and lines[i + 1].strip():
            over, heading, adorn, step = True, lines[i + 1].strip(), lines[i + 2].strip()[0], 3
        elif (
            line.strip()
            and not _RST_ADORN.match(line)
            and _RST_ADORN.match(nxt)
            and len(nxt.strip()) >= len(line.strip())
        ):
            heading, adorn, step = line.strip(), nxt.strip()[0], 2
        else:
            buf.append(line)
            i += 1
            continue
        style = ("o" if over else "u") + adorn
        if style not in styles:
            styles.append(style)
        level = styles.index(style) + 1
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
        i += step
    flush()
    return [ParsedDoc(title=_first_heading(sections) or title, sections=sections or [Section(text)])]


def parse_csv(text: str, title: str) -> list[ParsedDoc]:
    """Rows become `header: value` lines so a chunk of rows still says what each value means."""
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise ParseError("empty CSV")
    header, body = rows[0], rows[1:]
    if not body:
        return parse_plain(text, title)
    lines = []
    for n, row in enumerate(body, start=2):
        pairs = enumerate(zip(header, row, strict=False))
        cells = [f"{h.strip() or f'col{i + 1}'}: {v.strip()}" for i, (h, v) in pairs]
        lines.append(f"row {n}: " + "; ".join(c for c in cells if not c.endswith(": ")))
    return [ParsedDoc(title=title, sections=[Section("\n".join(lines))])]


def _first_heading(sections: list[Section]) -> str:
    return sections[0].heading[0] if sections and sections[0].heading else ""
