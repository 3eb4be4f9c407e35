"""OCR of images of text and scanned PDFs, in the real parser child, with the real RapidOCR models.

The images are rendered here with Pillow (a photo-like page of text, and a PDF whose pages are nothing
but images, as a scanner makes them), so what OCR must read is known exactly.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from storage.parsers import ParseError
from storage.parsers.worker import ParseLimits, ParserProcess

ROOT = Path(__file__).resolve().parents[3]
INVOICE = ["The quarterly invoice is due on the ninth of May.", "Payment goes to the harbour office."]
BOILER = ["The boiler was serviced in October.", "The engineer replaced the pressure valve."]


def page_image(lines: list[str]):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    image = Image.new("L", (1240, 800), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((80, 120 + i * 70), line, fill=0, font=font)
    return image


def png(lines: list[str]) -> bytes:
    buf = io.BytesIO()
    page_image(lines).save(buf, "PNG")
    return buf.getvalue()


def scanned_pdf(*pages: list[str]) -> bytes:
    """A PDF with one image per page and no text layer, as a scanner writes it."""
    images = [page_image(p).convert("RGB") for p in pages]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return buf.getvalue()


def words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


@pytest.fixture(scope="module")
def parser():  # type: ignore[no-untyped-def]
    # One second for the whole file is far too little for OCR: passing proves each page gets its own budget.
    with ParserProcess(ParseLimits(seconds=1, ocr_page_seconds=120)) as child:
        yield child


def test_image_of_text_is_read_and_marked_as_ocr(parser) -> None:  # type: ignore[no-untyped-def]
    [doc] = parser.parse("invoice.png", png(INVOICE))
    [section] = doc.sections
    assert section.ocr and section.page is None
    assert {"quarterly", "invoice", "ninth", "may", "harbour", "office"} <= words(section.text)


def test_scanned_pdf_pages_are_read_and_cited_as_ocr(parser, store) -> None:  # type: ignore[no-untyped-def]
    from storage.chunking import chunk_document
    from storage.documents import Documents
    from storage.search import Searcher

    data = scanned_pdf(INVOICE, BOILER)
    from pypdf import PdfReader

    assert all(not p.extract_text().strip() for p in PdfReader(io.BytesIO(data)).pages)  # no text layer
    [doc] = parser.parse("scan.pdf", data)
    assert [(s.page, s.ocr) for s in doc.sections] == [(1, True), (2, True)]
    # Letters, not word gaps: PP-OCR's recogniser sometimes drops a narrow space on JPEG-compressed scans.
    assert all(w in doc.sections[1].text.lower() for w in ("boiler", "serviced", "october", "pressure", "valve"))
    chunks = chunk_document(doc)
    assert [c.location for c in chunks] == ["p. 1 (OCR)", "p. 2 (OCR)"]
    Documents(lambda: store.db).replace_file("/scans/scan.pdf", "pdf", "0" * 64, len(data), 0.0, [(doc, chunks)])
    [hit] = Searcher(lambda: store.db).search("pressure valve", k=1)
    assert hit.location == "p. 2 (OCR)" and hit.page == 2


def test_image_bomb_is_refused_before_decoding(parser) -> None:  # type: ignore[no-untyped-def]
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)  # 1.6 G pixels, stated in 13 bytes
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(ParseError, match=r"^the image is 40000x40000 pixels, over the 60 MP limit for OCR$"):
        parser.parse("bomb.png", bomb)
    with pytest.raises(ParseError, match=r"^corrupt or unsupported image"):
        parser.parse("junk.jpg", b"\xff\xd8\xff not really a jpeg")
    blank = io.BytesIO()
    page_image([]).save(blank, "PNG")
    with pytest.raises(ParseError, match=r"^no text found in the image \(OCR recognised none\)$"):
        parser.parse("blank.png", blank.getvalue())


_NO_NETWORK = """
import json, os, sys
seen = []
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT
def hook(event, args):
    if event.startswith(("socket.", "urllib.", "http.")) or event == "subprocess.Popen":
        seen.append(event)
    elif event == "open" and (any(m in str(args[1] or "") for m in "wax+") or (args[2] or 0) & WRITE):
        seen.append(f"write {args[0]}")
sys.addaudithook(hook)
from storage.parsers import parse
docs = parse("note.png", open(sys.argv[1], "rb").read())
print(json.dumps({"seen": seen, "text": docs[0].sections[0].text}))
"""


def test_ocr_opens_no_socket_and_writes_no_file(tmp_path: Path) -> None:
    """The models come from the wheel: no download, no socket, nothing written (audit hooks see all)."""
    image = tmp_path / "note.png"
    image.write_bytes(png(INVOICE))
    out = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, str(image)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["seen"] == [] and "invoice" in words(result["text"])


def test_without_ocr_a_scan_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The desktop bundle ships without OCR (OpenCV alone is ~190 MB): scans get that reason, not silence."""
    from storage.parsers import ocr, parse

    monkeypatch.setattr(ocr, "available", lambda: False)
    with pytest.raises(ParseError, match=r"^PDF has no text layer \(its scanned pages need OCR, which this"):
        parse("scan.pdf", scanned_pdf(INVOICE))
    with pytest.raises(ParseError, match=r"^scanned text needs OCR, which this installation lacks"):
        parse("note.png", png(INVOICE))
