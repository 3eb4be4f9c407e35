"""The parser child process: same results as parsing in-process, and every limit ends in a reason, fast.

These drive the real child (`python -m storage.parsers.worker`) over a real pipe; the inputs are real
files that are slow, big or hostile, not hooks that pretend to be.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

from storage.parsers import ParseError, parse
from storage.parsers.worker import ParseLimits, ParserProcess, Stopped

_spec = importlib.util.spec_from_file_location("docs_corpus", Path(__file__).parents[2] / "data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["docs_corpus"] = corpus
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def slow_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid 4,000-page PDF: several seconds of honest pypdf work."""
    path = tmp_path_factory.mktemp("slow") / "long.pdf"
    corpus.write_pdf(path, [f"Page {n} of a very long report about the harbour." for n in range(4000)])
    return path.read_bytes()


def test_child_parses_like_the_parent(tmp_path: Path) -> None:
    folder = corpus.build(tmp_path, distractors=0)
    with ParserProcess() as parser:
        for name in ("garden.md", "baking.pdf", "inbox.mbox", "travel.html", "report.docx"):
            data = (folder / name).read_bytes()
            assert parser.parse(name, data) == parse(name, data), name


def test_bad_file_reason_comes_back_and_the_child_carries_on() -> None:
    with ParserProcess() as parser:
        with pytest.raises(ParseError, match=r"^binary data, not text"):
            parser.parse("a.txt", b"\0\1\2" * 100)
        assert parser.parse("a.txt", b"plain words")[0].sections[0].text == "plain words"


def test_time_limit_kills_the_child_and_the_next_file_parses(slow_pdf: bytes) -> None:
    with ParserProcess(ParseLimits(seconds=0.5)) as parser:
        parser.parse("warm.txt", b"start the child and import the parsers")
        started = time.monotonic()
        with pytest.raises(ParseError, match=r"^took over 0.5 s to parse \(time limit\)$"):
            parser.parse("long.pdf", slow_pdf)
        assert time.monotonic() - started < 2.0
        assert parser.parse("after.md", b"# After\n\nstill working")[0].title == "After"


def test_memory_limit_is_a_reason_not_a_crash() -> None:
    with ParserProcess(ParseLimits(memory_mb=80)) as parser:
        with pytest.raises(ParseError, match=r"over 80 MB|80 MB memory limit"):
            parser.parse("big.txt", b"a line of a large log file\n" * 1_400_000)  # 38 MB: decoding needs 2x
        assert parser.parse("small.txt", b"fine again")[0].sections[0].text == "fine again"


def test_stop_interrupts_a_parse_within_a_second(slow_pdf: bytes) -> None:
    stop = threading.Event()
    with ParserProcess() as parser:
        parser.parse("warm.txt", b"start the child")
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Stopped):
            parser.parse("long.pdf", slow_pdf, stop.is_set)
        assert time.monotonic() - started < 1.0
        assert parser.parse("next.txt", b"a new child")[0].sections[0].text == "a new child"


def test_child_gets_no_secrets_and_no_core_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_PASSPHRASE", "correct horse battery staple")
    with ParserProcess(ParseLimits(memory_mb=1024)) as parser:
        parser.parse("a.txt", b"hello")
        pid = parser._proc.pid  # type: ignore[union-attr]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        limits = Path(f"/proc/{pid}/limits").read_text()
    assert b"correct horse" not in environ and b"HEARTH_PASSPHRASE" not in environ
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    address = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert core.split()[4:6] == ["0", "0"]
    assert address.split()[3:5] == [str(1024 * 2**20)] * 2
