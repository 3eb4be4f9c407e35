"""Property tests: whatever bytes arrive, a parser returns text or raises ParseError, never anything else.

A crash in one file's parser would abort a whole batch; these tests feed every parser random bytes and
mutated real files. Chunking properties: chunks stay within the target size and lose no text.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.chunking import chunk_document
from storage.parsers import ParseError, parse
from storage.parsers.model import ParsedDoc, Section

_spec = importlib.util.spec_from_file_location("docs_corpus", Path(__file__).parents[2] / "data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["docs_corpus"] = corpus
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]

NAMES = ["a.txt", "a.md", "a.rst", "a.html", "a.pdf", "a.docx", "a.odt", "a.eml", "a.mbox", "a.csv", "a.py"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _parse_or_reason(name: str, data: bytes) -> None:
    try:
        docs = parse(name, data)
    except ParseError as exc:
        assert str(exc)
        return
    assert docs
    for doc in docs:
        assert all(isinstance(s.text, str) for s in doc.sections)
        assert not doc.is_empty()


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=4096))
def test_random_bytes_never_crash_a_parser(name: str, data: bytes) -> None:
    _parse_or_reason(name, data)


@FUZZ
@given(name=st.sampled_from(NAMES), text=st.text(max_size=2000))
def test_random_text_never_crashes_a_parser(name: str, text: str) -> None:
    _parse_or_reason(name, text.encode("utf-8"))


@pytest.fixture(scope="module")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = corpus.build(tmp_path_factory.mktemp("fuzz"), distractors=0)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@FUZZ
@given(data=st.data())
def test_mutated_real_files_never_crash_a_parser(real_files: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(real_files)))
    blob = bytearray(real_files[name])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(blob)))
    _parse_or_reason(name, bytes(blob[:cut]))


@settings(max_examples=80, deadline=None)
@given(paragraphs=st.lists(st.text(min_size=1, max_size=1500), min_size=1, max_size=12))
def test_chunks_fit_target_and_lose_no_words(paragraphs: list[str]) -> None:
    text = "\n\n".join(paragraphs)
    doc = ParsedDoc(title="t", sections=[Section(text, heading=("H",))])
    chunks = chunk_document(doc, target=400, overlap=80)
    assert all(len(c.text) <= 400 for c in chunks)
    joined = "".join("".join(c.text.split()) for c in chunks)  # words cut by a hard split rejoin here
    for word in text.split():
        assert word in joined


# Inputs that made a parser super-linear once (or would in a naive one), each ~100 KB: linear parsers
# finish each in well under a second; the cubic ATX regex or the quadratic HTML walks took minutes on
# these. Parsed in the real child under a 20 s limit, so a regression is a failure, not a hung suite.
PATHOLOGICAL = {
    "spaces.md": "# " + " " * 100_000 + "x\n",
    "hashes.md": "###### " + "#" * 100_000 + " x\n",
    "setext.md": "title\n" + "=" * 100_000 + " x\n",
    "fences.md": "```\n" * 30_000,
    "nested-list.md": "".join("  " * (i % 400) + "- item\n" for i in range(3_000)),
    "unclosed-p.html": "<p>" * 40_000 + "words",
    "deep-div.html": "<div>" * 30_000 + "words" + "</div>" * 30_000,
    "unclosed-comments.html": "<!--" * 25_000 + "words",
    "unclosed-tags.html": "<a" * 50_000 + "words",
    "open-attributes.html": "<a " + 'b="' * 30_000 + ">words",
    "processing.html": "<?" * 50_000 + "words",
    "cdata.html": "<![CDATA[" * 10_000 + "words",
    "tables.html": "<table><tr><td>" * 7_000 + "words",
    "adornment.rst": "=" * 100_000 + " x\n" + "title\n" + "-" * 100_000 + "\n",
    "quotes.csv": '"' + 'a,"' * 30_000 + "\nx,y\n",
    "mail-headers.eml": "Subject: " + "=?utf-8?q?" * 10_000 + "\n\nbody",
}


@pytest.fixture(scope="module")
def parser_process():
    from storage.parsers.worker import ParseLimits, ParserProcess

    with ParserProcess(ParseLimits(seconds=20)) as parser:
        yield parser


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_parses_within_the_limit(parser_process, name: str) -> None:
    try:
        docs = parser_process.parse(name, PATHOLOGICAL[name].encode())
    except ParseError as exc:
        assert "time limit" not in str(exc) and "crashed" not in str(exc), str(exc)
        return
    assert docs and not any(d.is_empty() for d in docs)


def test_text_caps_refuse_bombs_with_a_reason(tmp_path: Path) -> None:
    from storage.parsers.model import MAX_TEXT_CHARS

    bomb = tmp_path / "bomb.pdf"
    corpus.write_pdf_text_bomb(bomb)
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(ParseError, match=r"^PDF page 1 draws text over 20,000 times \(a text bomb\?\)$"):
        parse("bomb.pdf", bomb.read_bytes())
    pages = tmp_path / "pages.pdf"
    corpus.write_pdf_page_bomb(pages, 6_000)
    with pytest.raises(ParseError, match=r"^PDF has 6000 pages, over the 5000-page limit$"):
        parse("pages.pdf", pages.read_bytes())
    long_log = b"2026-12-01 10:00:00 INFO a line of an ordinary log\n" * (MAX_TEXT_CHARS // 50 + 1000)
    with pytest.raises(ParseError, match=r"^over the text cap \(over 10\.\d M characters > 10 M\)$"):
        parse("app.log", long_log)


def test_a_dense_page_under_the_caps_is_kept(tmp_path: Path) -> None:
    from storage.parsers import pdf

    path = tmp_path / "dense.pdf"
    corpus.write_pdf_text_bomb(path, pages=1, repeats=pdf.MAX_PAGE_TEXT_OPS // 2)
    [doc] = parse("dense.pdf", path.read_bytes())
    assert doc.sections[0].text.count("bomb") == pdf.MAX_PAGE_TEXT_OPS // 2
