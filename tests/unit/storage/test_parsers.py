"""Parsers on real files of every format, and on every kind of bad input the ingest summary must explain."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from storage.chunking import chunk_document
from storage.parsers import ParseError, parse
from storage.parsers.discover import discover

_spec = importlib.util.spec_from_file_location("docs_corpus", Path(__file__).parents[2] / "data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["docs_corpus"] = corpus
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return corpus.build(tmp_path_factory.mktemp("corpus"), distractors=1)


def _parse(path: Path):
    return parse(path.name, path.read_bytes())


def test_pdf_keeps_page_numbers(folder: Path) -> None:
    [doc] = _parse(folder / "baking.pdf")
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert "24 degrees Celsius" in doc.sections[1].text


@pytest.mark.parametrize(
    ("name", "heading", "phrase"),
    [
        ("garden.md", ("Garden notes", "Tomatoes", "Watering"), "twice a week"),
        ("report.docx", ("Quarterly report", "Revenue"), "17 percent"),
        ("minutes.odt", ("Board meeting", "Decisions"), "Rotterdam"),
        ("travel.html", ("Travel", "Japan"), "Shinkansen"),
        ("guide.rst", ("Installation", "Windows"), "administrator"),
    ],
)
def test_structured_formats_keep_heading_paths(folder: Path, name: str, heading: tuple, phrase: str) -> None:
    [doc] = _parse(folder / name)
    [section] = [s for s in doc.sections if phrase in s.text]
    assert section.heading == heading


def test_html_drops_scripts_and_uses_title(folder: Path) -> None:
    [doc] = _parse(folder / "travel.html")
    assert doc.title == "Trips"
    assert all("var x" not in s.text for s in doc.sections)


def test_mbox_is_one_document_per_message_with_headers(folder: Path) -> None:
    docs = _parse(folder / "inbox.mbox")
    assert [d.title for d in docs] == ["Newsletter: autumn sale", "Dentist appointment"]
    assert docs[1].meta["from"] == "clinic@example.com"
    assert "2024" in docs[1].meta["date"]
    assert "Dr. Okafor" in docs[1].sections[0].text
    assert docs[0].part != docs[1].part


def test_eml_csv_and_code(folder: Path) -> None:
    [mail] = _parse(folder / "bike.eml")
    assert mail.meta["subject"] == "Bicycle repair" and "45 dollars" in mail.sections[0].text
    [table] = _parse(folder / "contacts.csv")
    assert "name: Marguerite Lindqvist; phone: 555-0199; city: Uppsala" in table.sections[0].text
    [code] = _parse(folder / "mortgage.py")
    assert "compute_mortgage_payment" in code.sections[0].text


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (
            "Smörgåsbord och kräftskiva på fredag, säger Åsa. Vi träffas vid sjön klockan sju, "
            "och alla tar med något ätbart. Glöm inte att köpa dill och öl på vägen dit!".encode("cp1252"),
            "cp1252",
        ),
        ("Привет, это заметка о встрече в пятницу вечером, не забудь.".encode("koi8-r"), "koi8-r"),  # noqa: RUF001 - Cyrillic on purpose
        ("\ufeffUTF-16 with a byte-order mark: naïve café".encode("utf-16"), "utf-16"),
    ],
)
def test_text_encodings_are_detected(data: bytes, encoding: str) -> None:
    [doc] = parse("note.txt", data)
    assert doc.sections[0].text.lstrip("\ufeff") == data.decode(encoding).lstrip("\ufeff")


def test_encrypted_pdf_is_refused_with_reason(folder: Path, tmp_path: Path) -> None:
    corpus.write_encrypted_pdf(tmp_path / "locked.pdf", folder / "baking.pdf")
    with pytest.raises(ParseError, match="encrypted PDF"):
        _parse(tmp_path / "locked.pdf")


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage", b"not a pdf at all", b"%PDF-1.7\n" + bytes(range(256)) * 10],
)
def test_corrupt_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="PDF"):
        parse("broken.pdf", data)


def test_truncated_pdf_is_refused_or_partial(folder: Path) -> None:
    data = (folder / "baking.pdf").read_bytes()
    try:
        docs = parse("cut.pdf", data[: len(data) // 2])
    except ParseError as exc:
        assert "PDF" in str(exc)
    else:
        assert docs and not docs[0].is_empty()


def test_zip_bomb_docx_is_refused_without_inflating(tmp_path: Path) -> None:
    corpus.write_zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=250)
    assert (tmp_path / "bomb.docx").stat().st_size < 2**20
    with pytest.raises(ParseError, match="zip bomb"):
        _parse(tmp_path / "bomb.docx")


@pytest.mark.parametrize(("name", "kind"), [("fake.docx", "DOCX"), ("fake.odt", "ODT")])
def test_non_zip_office_file_is_refused(name: str, kind: str) -> None:
    with pytest.raises(ParseError, match=f"corrupt {kind}"):
        parse(name, b"PK\x03\x04 this is not really a zip")


def test_binary_junk_with_text_extension_is_refused() -> None:
    junk = bytes(range(256)) * 40
    with pytest.raises(ParseError, match="binary data"):
        parse("notes.txt", junk)
    with pytest.raises(ParseError, match="binary data"):
        parse("notes.md", b"\x7fELF\x02\x01\x01" + bytes(1000))


def test_empty_and_undecodable() -> None:
    with pytest.raises(ParseError, match="empty"):
        parse("empty.txt", b"")
    with pytest.raises(ParseError, match="undecodable"):
        parse("bad.txt", b"\xff\xfe" + b"\x00\xd8" * 50)  # UTF-16 BOM then unpaired surrogates


def test_chunks_carry_locations(folder: Path) -> None:
    [doc] = _parse(folder / "garden.md")
    chunks = chunk_document(doc)
    assert [c.location for c in chunks] == [
        "Garden notes",
        "Garden notes > Tomatoes",
        "Garden notes > Tomatoes > Watering",
        "Garden notes > Roses",
    ]


def test_discover_walks_filters_and_explains(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\ntext")
    (root / "sub" / "b.txt").write_text("b text")
    (root / "sub" / "skip.log").write_text("log text")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.txt").write_bytes(b"x" * 3000)
    (root / "image.xcf").write_bytes(b"gimp xcf v011")  # not a format Hearth reads: passed over silently
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.txt").write_text("hidden")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "self").symlink_to(root / "self")
    os.mkfifo(root / "sub" / "pipe.txt")
    os.mkfifo(root / "sub" / "pipe.log")  # excluded, so not even mentioned
    found, refused = discover([root, tmp_path / "missing.txt"], exclude=["*.log"], max_bytes=2000)
    assert [c.path.name for c in found] == ["a.md", "b.txt"]
    reasons = {Path(r.path).name: r.reason for r in refused}
    assert reasons["empty.txt"].startswith("empty file")
    assert reasons["big.txt"].startswith("over the size cap")
    assert reasons["loop"].startswith("symlink loop")
    assert reasons["self"] == "symlink loop"
    assert reasons["missing.txt"].startswith("not found")
    assert reasons["pipe.txt"].startswith("not a regular file") and "pipe.log" not in reasons
    found, _ = discover([root], include=["*.md"])
    assert [c.path.name for c in found] == ["a.md"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_discover_reports_unreadable_folder(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.txt").write_text("x")
    (tmp_path / "locked").chmod(0)
    try:
        _, refused = discover([tmp_path])
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert any("permission denied" in r.reason for r in refused)
