"""Builds the small, realistic document corpus the document tests ingest (nothing binary is committed).

`build(folder)` writes one file per supported format, each holding a fact a test asks about, plus
distractor text from the standard library's own documentation. `QUESTIONS` maps a question to the file
and location (page or heading) that answers it. PDFs are written by hand in raw PDF syntax: no PDF
writer is installed, and pypdf reads them back like any other.
"""

from __future__ import annotations

import mailbox
import zipfile
from email.message import EmailMessage
from pathlib import Path

CANARY = "Zanzibar-canary-7f3a9c quokka lullaby"

# question -> (file name, expected location substring)
QUESTIONS: dict[str, tuple[str, str]] = {
    "How often should I water the tomatoes?": ("garden.md", "Tomatoes > Watering"),
    "At what temperature does the sourdough starter ferment?": ("baking.pdf", "p. 2"),
    "How much did revenue grow in the third quarter?": ("report.docx", "Quarterly report > Revenue"),
    "Where will the warehouse be relocated?": ("minutes.odt", "Board meeting > Decisions"),
    "When is my dentist appointment?": ("inbox.mbox", "Dentist appointment"),
    "How much did the derailleur replacement cost?": ("bike.eml", "Bicycle repair"),
    "How long is the Shinkansen ride from Tokyo to Kyoto?": ("travel.html", "Travel > Japan"),
    "Which city does Marguerite Lindqvist live in?": ("contacts.csv", "line"),
    "How is the monthly mortgage payment computed?": ("mortgage.py", "line"),
    "How do I install on Windows?": ("guide.rst", "Installation > Windows"),
}


def build(folder: Path, distractors: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "garden.md").write_text(
        "# Garden notes\n\nThe allotment is plot 14, near the east gate.\n\n"
        "## Tomatoes\n\nSeedlings go out after the last frost in mid May.\n\n"
        "### Watering\n\nWater the tomatoes deeply twice a week; the soil should stay moist 15 cm down. "
        "Never water the leaves in the evening, or blight follows.\n\n"
        "## Roses\n\nPrune the roses in late February, just above an outward-facing bud.\n",
        encoding="utf-8",
    )
    write_pdf(
        folder / "baking.pdf",
        [
            "Bread notes. Chapter one covers flour types: spelt, einkorn and emmer.",
            "The sourdough starter ferments best at 24 degrees Celsius, fed daily with rye flour and water.",
            f"Storage. Keep loaves in linen, never in the fridge. {CANARY}",
        ],
    )
    write_docx(
        folder / "report.docx",
        [
            (1, "Quarterly report"),
            (0, "This report covers the third quarter for the board."),
            (2, "Revenue"),
            (0, "Revenue in the third quarter grew by 17 percent to 4.2 million euros, driven by exports."),
            (2, "Staffing"),
            (0, "Two engineers joined the firmware team in August."),
        ],
    )
    write_odt(
        folder / "minutes.odt",
        [
            (1, "Board meeting"),
            (0, "Present: the chair, the treasurer and four members."),
            (2, "Decisions"),
            (0, "The board decided to relocate the warehouse to Rotterdam by next spring."),
        ],
    )
    box = mailbox.mbox(str(folder / "inbox.mbox"))
    box.add(_mail("Newsletter: autumn sale", "shop@example.com", "Everything in the shop is 20 percent off this week."))
    box.add(
        _mail(
            "Dentist appointment",
            "clinic@example.com",
            "Your dentist appointment is moved to Thursday at 3 pm with Dr. Okafor.",
        )
    )
    box.flush()
    box.close()
    bike = _mail("Bicycle repair", "cycles@example.com", "We replaced the rear derailleur; the total was 45 dollars.")
    (folder / "bike.eml").write_bytes(bytes(bike))
    (folder / "travel.html").write_text(
        "<html><head><title>Trips</title><script>var x = 1;</script></head><body>"
        "<h1>Travel</h1><p>Notes from trips abroad.</p>"
        "<h2>Japan</h2><p>The Shinkansen from Tokyo to Kyoto takes about two hours and fifteen minutes.</p>"
        "<h2>Portugal</h2><p>Lisbon trams are steep; take tram 28 early in the morning.</p></body></html>",
        encoding="utf-8",
    )
    (folder / "contacts.csv").write_text(
        "name,phone,city\nAnders Berg,555-0101,Malmo\nMarguerite Lindqvist,555-0199,Uppsala\n"
        "Jonas Eklund,555-0142,Lund\n",
        encoding="utf-8",
    )
    (folder / "mortgage.py").write_text(
        "def compute_mortgage_payment(principal, annual_rate, years):\n"
        '    """Monthly mortgage payment with the standard annuity formula."""\n'
        "    r = annual_rate / 12\n    n = years * 12\n    return principal * r / (1 - (1 + r) ** -n)\n",
        encoding="utf-8",
    )
    (folder / "guide.rst").write_text(
        "Installation\n============\n\nHearth runs on three systems.\n\n"
        "Windows\n-------\n\nRun the installer as administrator and reboot afterwards.\n\n"
        "Linux\n-----\n\nUse the install script from a terminal.\n",
        encoding="utf-8",
    )
    import pydoc

    for name in ("json", "argparse", "logging", "pathlib", "csv", "zipfile")[:distractors]:
        module = __import__(name)
        text = pydoc.render_doc(module, renderer=pydoc.plaintext)[:12000]
        (folder / f"{name}-docs.txt").write_text(text, encoding="utf-8")
    return folder


def _mail(subject: str, sender: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = "me@example.com"
    msg["Date"] = "Tue, 03 Sep 2024 10:00:00 +0000"
    msg.set_content(body)
    return msg


def write_pdf(path: Path, pages: list[str]) -> None:
    """A minimal valid PDF, one line of Helvetica text per page, with a correct xref table."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objs: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        words, lines, line = text.split(), [], ""
        for w in words:  # wrap at ~80 chars so the page stays on the page
            if len(line) + len(w) > 80:
                lines.append(line)
                line = ""
            line += (" " if line else "") + w
        lines.append(line)
        ops = "BT /F1 11 Tf 14 TL 50 750 Td " + " ".join(f"({esc(ln)}) Tj T*" for ln in lines) + " ET"
        stream = ops.encode("latin-1")
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    path.write_bytes(_pdf_file(objs))


def write_pdf_text_bomb(path: Path, pages: int = 4, repeats: int = 200_000) -> None:
    """A few-KiB PDF whose Flate-compressed pages each draw the same word `repeats` times (MBs of text)."""
    import zlib

    ops = b"BT /F1 1 Tf " + b"(bomb ) Tj " * repeats + b"ET"
    stream = zlib.compress(ops, 9)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font = 3 + 2 * pages
    for i in range(pages):
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    path.write_bytes(_pdf_file(objs))


def write_pdf_page_bomb(path: Path, pages: int) -> None:
    """Many blank pages sharing one content stream: a small file that claims a huge page count."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join("3 0 R" for _ in range(pages))  # one page object listed `pages` times
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
    path.write_bytes(_pdf_file(objs))


def write_pdf_scan_bomb(path: Path, side: int = 40_000) -> None:
    """A page whose only content is an image stated as side x side pixels (1.6 G at 40,000): a scan bomb."""
    data = b"\0" * 100
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
    objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 4 0 R >> >> >>")
    objs.append(
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length %d >>\nstream\n%s\nendstream" % (side, side, len(data), data)
    )
    path.write_bytes(_pdf_file(objs))


def _pdf_file(objs: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def write_encrypted_pdf(path: Path, source: Path, password: str = "hunter2") -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    with path.open("wb") as f:
        writer.write(f)


def write_docx(path: Path, blocks: list[tuple[int, str]]) -> None:
    import docx

    document = docx.Document()
    for level, text in blocks:
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    document.save(str(path))


def write_odt(path: Path, blocks: list[tuple[int, str]]) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    for level, text in blocks:
        doc.text.addElement(H(outlinelevel=level, text=text) if level else P(text=text))
    doc.save(str(path))


def write_zip_bomb_docx(path: Path, inflated_mb: int = 300) -> None:
    """A .docx-named zip whose document.xml inflates to hundreds of MB (written in 1 MB steps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as f:
            block = b"\0" * 2**20
            for _ in range(inflated_mb):
                f.write(block)


if __name__ == "__main__":  # `python tests/data/docs/corpus.py OUT_DIR` writes the corpus for manual tries
    import sys

    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "docs-corpus")))
