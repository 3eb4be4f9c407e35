"""Chunking keeps structure: sections never mix, overlap repeats whole sentences, locations are exact."""

from __future__ import annotations

import itertools

from storage.chunking import TARGET_CHARS, chunk_document
from storage.parsers import parse
from storage.parsers.model import ParsedDoc, Section


def _sentences(n: int, tag: str) -> str:
    return " ".join(f"Sentence {i} about {tag} has several words in it." for i in range(n))


def test_long_section_splits_with_sentence_overlap() -> None:
    doc = ParsedDoc("t", [Section(_sentences(60, "owls"), heading=("Birds", "Owls"))])
    chunks = chunk_document(doc)
    assert len(chunks) > 2
    assert all(len(c.text) <= TARGET_CHARS for c in chunks)
    assert all(c.location == "Birds > Owls" for c in chunks)
    for a, b in itertools.pairwise(chunks):
        last_sentence = a.text.rsplit(". ", 1)[-1]
        assert last_sentence in b.text  # the boundary sentence appears in both
    assert [c.seq for c in chunks] == list(range(len(chunks)))


def test_sections_and_pages_never_mix() -> None:
    doc = ParsedDoc("t", [Section("Page one text.", page=1), Section("Page two text.", page=2)])
    chunks = chunk_document(doc)
    assert [(c.text, c.location, c.page) for c in chunks] == [
        ("Page one text.", "p. 1", 1),
        ("Page two text.", "p. 2", 2),
    ]


def test_plain_text_gets_line_ranges() -> None:
    text = "\n".join(f"line {i} " + "x" * 60 for i in range(1, 41))
    [doc] = parse("notes.txt", text.encode())
    chunks = chunk_document(doc)
    assert chunks[0].location.startswith("lines 1-")
    first_line_of_second = int(chunks[1].text.split()[1])
    assert chunks[1].location.startswith(f"lines {first_line_of_second}-")
    assert chunks[-1].location.endswith("-40")


def test_unbreakable_text_is_hard_split() -> None:
    doc = ParsedDoc("t", [Section("x" * 2500)])
    chunks = chunk_document(doc)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


def test_embed_text_carries_heading_context() -> None:
    [chunk] = chunk_document(ParsedDoc("t", [Section("Twice a week.", heading=("Tomatoes", "Watering"))]))
    assert chunk.embed_text() == "Tomatoes > Watering\nTwice a week."


def test_citations_name_the_page_heading_or_message() -> None:
    """What `hearth ask --docs` prints after each source: a PDF page, a heading path, a mail message."""
    mbox = (
        b"From a@example.com Tue Sep  3 10:00:00 2024\nSubject: Keys\nFrom: a@example.com\n\nSpare key by the door.\n"
        b"From b@example.com Tue Sep  3 11:00:00 2024\nSubject: Re: Keys\nFrom: b@example.com\n\nFound it.\n"
    )
    located = [[c.location for c in chunk_document(d)] for d in parse("inbox.mbox", mbox)]
    assert located == [["message 1: Keys"], ["message 2: Re: Keys"]]
    [md] = parse("notes.md", b"# Boiler\n\n## Service\n\nThe valve was replaced.\n")
    assert [c.location for c in chunk_document(md)] == ["Boiler > Service"]
    [html] = parse("page.html", b"<h1>Trip</h1><h2>Trains</h2><p>The night train leaves at nine.</p>")
    assert [c.location for c in chunk_document(html)] == ["Trip > Trains"]
