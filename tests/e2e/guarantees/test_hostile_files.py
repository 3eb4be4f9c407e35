"""Hostile files: `hearth add` over a folder of bad inputs gives one clear reason each and loses nothing.

Every bad file carries the canary too, so a reason that quotes file content would be caught. The weird but
valid files (odd Unicode names, a folder named like a file) must simply be ingested.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import zipfile
import zlib
from pathlib import Path

import guarantee_kit as kit
import pytest

CAP_MB = 1  # `--max-size 1`: the "huge" file is over it without writing gigabytes


def _hostile_set(root: Path) -> tuple[Path, dict[str, str], dict[str, str], list[str], list[Path]]:
    """(folder, must-fail name -> reason regex, may-fail name -> reason regex, must-ingest names, extra paths)."""
    corpus = kit.docs_corpus()
    folder = root / "hostile"
    folder.mkdir()
    canary = kit.CANARY.encode()
    rng = random.Random(20)
    must: dict[str, str] = {}
    may: dict[str, str] = {}

    def bad(name: str, data: bytes, reason: str) -> None:
        (folder / name).write_bytes(data)
        must[name] = reason

    bad(
        "corrupt.pdf",
        b"%PDF-1.7\n1 0 obj << /Kids [" + canary + b"\n" + rng.randbytes(2000),
        r"^corrupt PDF|no extractable",
    )
    bad("not-a-pdf.pdf", b"PK\x03\x04" + canary + rng.randbytes(500), r"^corrupt PDF \(no PDF header\)")
    plain_pdf = root / "plain.pdf"
    corpus.write_pdf(plain_pdf, [f"Secret page {kit.CANARY}"])
    corpus.write_encrypted_pdf(folder / "locked.pdf", plain_pdf)
    must["locked.pdf"] = r"^encrypted PDF"
    corpus.write_pdf(folder / "blank.pdf", [""])
    must["blank.pdf"] = r"no extractable text"
    corpus.write_zip_bomb_docx(folder / "bomb.docx", inflated_mb=120)
    must["bomb.docx"] = r"zip bomb"
    bad("not-a-zip.docx", canary + rng.randbytes(3000), r"^corrupt DOCX file \(not a valid zip")
    whole = root / "whole.docx"
    corpus.write_docx(whole, [(0, f"half a document {kit.CANARY}")])
    bad("truncated.docx", whole.read_bytes()[: whole.stat().st_size // 2], r"^corrupt DOCX")
    broken_xml = io.BytesIO()
    with zipfile.ZipFile(broken_xml, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"<w:document><w:body><w:p>" + canary + b"</w:unclosed")
    bad("broken-xml.docx", broken_xml.getvalue(), r"^corrupt DOCX")
    bad("garbage.odt", rng.randbytes(4000), r"^corrupt ODT")
    bad("binary.txt", rng.randbytes(4096) + b"\0\0" + canary, r"^binary data, not text")
    bad("controls.txt", bytes(range(1, 9)) * 400 + canary, r"^binary data, not text")
    bad("nul-inside.md", b"# Title\n\n" + canary + b"\0" * 64, r"^binary data, not text")
    bad("bad-utf16.txt", b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8A\x00", r"^undecodable bytes")
    bad("empty.md", b"", r"^empty file")
    bad("blank.txt", b" \n\t\n   \n", r"no text found")
    bad("huge.txt", (b"a harmless line of text\n" * 50_000) + canary, rf"^over the size cap .* > {CAP_MB}\.0 MB")
    bad("headless.eml", rng.randbytes(64).replace(b":", b"") + b"\n\n" + canary, r"^not an e-mail message|no text")
    bad("not.mbox", b"Hello " + canary, r"^not an mbox file")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    must["loop"] = r"^symlink loop"
    (folder / "self.txt").symlink_to(folder / "self.txt")
    must["self.txt"] = r"^symlink loop"
    (folder / "dangling.md").symlink_to(root / "nowhere.md")
    must["dangling.md"] = r"^not found"
    os.mkfifo(folder / "pipe-in-folder.txt")  # must not hang the walk
    must["pipe-in-folder.txt"] = r"^not a regular file"
    corpus.write_pdf_text_bomb(folder / "text-bomb.pdf")  # 18 KB that expands to MBs of text per page
    must["text-bomb.pdf"] = r"^PDF page 1 draws text over .* \(a text bomb\?\)$"
    corpus.write_pdf_page_bomb(folder / "page-bomb.pdf", 100_000)
    must["page-bomb.pdf"] = r"^PDF has 100000 pages, over the 5000-page limit$"
    # OCR's inputs: refused by their stated size, before a pixel is decoded.
    corpus.write_pdf_scan_bomb(folder / "scan-bomb.pdf")
    must["scan-bomb.pdf"] = r"^the scan on page 1 is 40000x40000 pixels, over the 60 MP limit for OCR$"

    def png_chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    size = (40_000).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00"  # 1.6 G pixels stated in 13 bytes
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    png_bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", size) + idat + png_chunk(b"IEND", b"")
    bad("pixel-bomb.png", png_bomb + canary, r"^the image is 40000x40000 pixels, over the 60 MP limit for OCR$")

    # Odd but parseable inputs: a clear reason, or ingested; never a crash.
    (folder / "deep.html").write_text("<div>" * 50_000 + kit.CANARY + "</div>" * 50_000)
    may["deep.html"] = r"too complex|no text"
    (folder / "deep.json").write_text("[" * 100_000 + json.dumps(kit.CANARY) + "]" * 100_000)
    may["deep.json"] = r"too complex"
    (folder / "mojibake.txt").write_bytes(bytes(b % 128 + 128 for b in rng.randbytes(3000)))
    may["mojibake.txt"] = r"^undecodable bytes"
    (folder / "latin1.txt").write_bytes(f"Caf\xe9 cr\xe8me br\xfbl\xe9e. {kit.CANARY}".encode("latin-1"))
    may["latin1.txt"] = r"^undecodable bytes"
    unreadable = folder / "locked-away.md"
    unreadable.write_text(f"# Private\n\n{kit.CANARY}\n")
    unreadable.chmod(0o000)  # root reads it anyway: then it is simply ingested
    if os.geteuid() == 0:
        may["locked-away.md"] = r"^permission denied"
    else:
        must["locked-away.md"] = r"^permission denied"

    good = ["good.md", "naïve café 文件.txt", "emoji 🦊 notes.md", "rtl \u202etxt.md", "new\nline.txt"]
    (folder / "good.md").write_text("# Good\n\nA perfectly ordinary note about tomatoes.\n")
    # Pathological but valid: minutes each for a backtracking heading regex or a quadratic HTML walk.
    (folder / "spaces.md").write_text("# " + " " * 200_000 + "Heading\n\nA note about chives.\n")
    (folder / "unclosed.html").write_text("<p>" * 100_000 + "A page about lavender." + "<!--" * 20_000)
    good += ["spaces.md", "unclosed.html"]
    for name in good[1:]:
        (folder / name).write_text(f"A perfectly ordinary note called {name!r} about roses.\n")
    like_a_file = folder / "archive.pdf"
    like_a_file.mkdir()
    (like_a_file / "inside.txt").write_text("A folder named like a PDF holds this plain note about basil.\n")
    good.append("archive.pdf/inside.txt")

    extra_fifo = root / "named-pipe.md"
    os.mkfifo(extra_fifo)
    picture = root / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + canary)
    must["named-pipe.md"] = r"^not a regular file"
    must["photo.png"] = r"^corrupt or unsupported image"
    must["missing.txt"] = r"^not found"
    return folder, must, may, good, [extra_fifo, picture, root / "missing.txt"]


@pytest.mark.slow
def test_hostile_folder_gives_one_reason_per_file_and_keeps_everything_else(tmp_path: Path) -> None:
    sb = kit.Sandbox(tmp_path / "world")
    keep = tmp_path / "keep.md"
    keep.write_text("# Keep\n\nThe allotment is plot 14, near the east gate.\n")
    sb.ok("add", str(keep), "--no-embed")
    folder, must, may, good, extra = _hostile_set(tmp_path)
    assert len(must) + len(may) >= 20

    done = sb.run("add", str(folder), *map(str, extra), "--max-size", str(CAP_MB), "--no-embed", "--json", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert kit.CANARY not in done.stdout + done.stderr, "a reason quotes file content"
    summary = json.loads(done.stdout)
    reasons: dict[str, list[str]] = {}
    for failure in summary["failures"]:
        reasons.setdefault(Path(failure["path"]).name, []).append(failure["reason"])
    assert all(len(r) == 1 for r in reasons.values()), {n: r for n, r in reasons.items() if len(r) != 1}
    flat = {name: r[0] for name, r in reasons.items()}
    for name, pattern in must.items():
        assert name in flat, f"{name}: no reason given (summary: {sorted(flat)})"
        assert re.search(pattern, flat[name]), f"{name}: unclear reason {flat[name]!r}"
    for name, pattern in may.items():
        if name in flat:
            assert re.search(pattern, flat[name]), f"{name}: unclear reason {flat[name]!r}"
    for name, reason in flat.items():
        assert "\n" not in reason and 0 < len(reason) < 200, (name, reason)
    unexpected = set(flat) - set(must) - set(may)
    assert unexpected == set(), {n: flat[n] for n in unexpected}

    listing = json.loads(sb.ok("docs", "--json").stdout)
    listed = [d for d in listing if not d["status"].startswith("failed: ")]  # failed files are listed too
    assert {d["path"] for d in listing if d["status"].startswith("failed: ")} == {
        f["path"] for f in summary["failures"]
    }
    indexed = {str(Path(d["path"]).relative_to(folder)) if Path(d["path"]).is_relative_to(folder) else d["path"]
               for d in listed}  # fmt: skip
    assert str(keep.resolve()) in indexed, "a document stored before the hostile batch was lost"
    for name in good:
        assert name in indexed, f"the valid file {name!r} was not ingested"
    for name in may:
        assert (name in flat) != (name in indexed), f"{name}: neither ingested nor refused, or both"
    assert not any(name in indexed for name in must)
    found = json.loads(sb.ok("search", "tomatoes allotment basil roses", "-k", "10", "--json").stdout)
    assert {Path(h["source"]).name for h in found} >= {"keep.md", "good.md", "inside.txt"}
    with sb.store() as store:
        assert store.integrity_check() == ["ok"]


@pytest.mark.slow
def test_big_files_get_a_result_within_their_limits(tmp_path: Path) -> None:
    """A 200 MB log (written at test time, with the size cap raised past it) and a mailbox carrying a
    30 MB attachment: the log is refused by the text cap before any parser walks it, the mailbox is
    indexed without its attachment, and the run stays fast."""
    import base64
    import time

    sb = kit.Sandbox(tmp_path / "world")
    folder = tmp_path / "big"
    folder.mkdir()
    line = b"2026-12-01T10:00:00Z INFO worker-7 request served in 12 ms (status 200)\n"
    with (folder / "server.log").open("wb") as f:
        block = line * (4 * 2**20 // len(line))
        for _ in range(50):
            f.write(block)
    assert (folder / "server.log").stat().st_size > 199 * 2**20
    attachment = base64.encodebytes(random.Random(7).randbytes(22 * 2**20))  # ~30 MB once encoded
    mbox = (
        b"From alice@example.org Mon Dec  1 09:00:00 2026\n"
        b"From: Alice <alice@example.org>\nSubject: Ferry times\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\n'
        b"The ferry to the island leaves at seven from pier four.\n--b1\n"
        b'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="dump.bin"\n'
        b"Content-Transfer-Encoding: base64\n\n" + attachment + b"--b1--\n"
    )
    (folder / "inbox.mbox").write_bytes(mbox)

    started = time.monotonic()
    done = sb.run("add", str(folder), "--max-size", "300", "--no-embed", "--json", timeout=300)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert {Path(f["path"]).name: f["reason"] for f in summary["failures"]} == {
        "server.log": "over the text cap (over 52.4 M characters > 10 M)"
    }
    assert summary["added"] == 1
    assert elapsed < 120, f"{elapsed:.0f} s for two big files"
    found = json.loads(sb.ok("search", "when does the ferry leave", "--json").stdout)
    assert found and found[0]["title"] == "Ferry times"
