"""Documents end to end on a real SQLCipher store and the real bundled embedding model.

Covers: the right file in the top 5 with the right page/heading, keyword search before vectors exist,
incremental re-runs, forgetting, every bad-input kind in one batch without losing stored documents, the
plaintext canary scan, and resuming after SIGKILL without duplicates.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.documents import Documents
from storage.embeddings import Embedder
from storage.ingest import Ingester
from storage.search import Searcher

_spec = importlib.util.spec_from_file_location("docs_corpus", Path(__file__).parents[1] / "data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["docs_corpus"] = corpus
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    model = Embedder()
    model.load()
    return model


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return corpus.build(tmp_path / "corpus", distractors=2)


def _ingester(store, embedder: Embedder) -> Ingester:  # type: ignore[no-untyped-def]
    return Ingester(lambda: store.db, embedder)


def test_questions_find_the_right_file_and_citation(store, folder: Path, embedder: Embedder) -> None:
    summary = _ingester(store, embedder).add([folder])
    assert summary.counts()["failed"] == 0 and summary.pending_vectors == 0
    searcher = Searcher(lambda: store.db, embedder)
    for question, (name, location) in corpus.QUESTIONS.items():
        hits = searcher.search(question, k=5)
        names = [Path(h.source).name for h in hits]
        assert name in names, (question, names)
        hit = hits[names.index(name)]
        assert location in hit.location, (question, hit.location)
        assert hit.similarity is not None and hit.similarity > 0.3
    assert len({h.document_id for h in searcher.search("notes", k=10)}) == len(searcher.search("notes", k=10))


def test_keyword_search_works_before_vectors(store, folder: Path) -> None:
    summary = Ingester(lambda: store.db).add([folder], embed=False)
    assert summary.pending_vectors == summary.chunks > 0
    searcher = Searcher(lambda: store.db)
    [hit] = searcher.search("Shinkansen Kyoto", k=1)
    assert Path(hit.source).name == "travel.html"
    assert hit.keyword and hit.similarity is None
    assert searcher._embedder is None  # no vectors yet: the model was never loaded


def test_incremental_rerun_update_and_forget(store, folder: Path, embedder: Embedder) -> None:
    ingester = _ingester(store, embedder)
    first = ingester.add([folder])
    docs = Documents(lambda: store.db)
    before = docs.counts()
    again = ingester.add([folder])
    assert again.counts() == {"added": 0, "updated": 0, "skipped": first.counts()["added"], "failed": 0}
    assert docs.counts() == before
    (folder / "garden.md").write_text("# Garden notes\n\n## Beans\n\nRunner beans climb the hazel poles.\n")
    third = ingester.add([folder])
    assert third.counts()["updated"] == 1 and third.counts()["skipped"] == first.counts()["added"] - 1
    searcher = Searcher(lambda: store.db, embedder)
    assert Path(searcher.search("runner beans hazel poles", k=1)[0].source).name == "garden.md"
    assert all("tomatoes" not in h.text for h in searcher.search("water the tomatoes twice a week", k=10))
    (folder / "bike.eml").unlink()
    assert [Path(p).name for p in docs.forget_missing()] == ["bike.eml"]
    assert docs.forget("report.docx") == [str(folder / "report.docx")]
    remaining = {Path(f.path).name for f in docs.list()}
    assert "bike.eml" not in remaining and "report.docx" not in remaining and "garden.md" in remaining
    rows = store.db.execute("SELECT count(*) FROM doc_chunks_fts WHERE doc_chunks_fts MATCH 'derailleur'")
    assert rows.fetchone()[0] == 0  # forgotten text leaves the FTS index too


def test_bad_inputs_get_reasons_and_lose_nothing(store, tmp_path: Path, folder: Path, embedder: Embedder) -> None:
    ingester = _ingester(store, embedder)
    ingester.add([folder / "garden.md"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n")
    corpus.write_encrypted_pdf(bad / "locked.pdf", folder / "baking.pdf")
    corpus.write_zip_bomb_docx(bad / "bomb.docx", inflated_mb=250)
    (bad / "junk.txt").write_bytes(os.urandom(4096))
    (bad / "empty.md").write_bytes(b"")
    (bad / "huge.txt").write_bytes(b"big text " * 200_000)
    (bad / "mangled.txt").write_bytes(b"\xfe\xff" + b"\xd8\x00" * 64)  # UTF-16BE BOM, then lone surrogates
    (bad / "loop").symlink_to(bad, target_is_directory=True)
    (bad / "self.txt").symlink_to(bad / "self.txt")
    (bad / "good.txt").write_text("The spare key is under the blue flowerpot by the back door.")
    summary = ingester.add([bad], max_bytes=1_000_000)
    reasons = {Path(o.path).name: o.reason for o in summary.by_status("failed")}
    assert reasons["corrupt.pdf"].startswith("corrupt PDF")
    assert reasons["locked.pdf"] == "encrypted PDF (password protected)"
    assert "zip bomb" in reasons["bomb.docx"]
    assert reasons["junk.txt"].startswith(("binary data", "undecodable"))
    assert reasons["empty.md"].startswith("empty file")
    assert reasons["huge.txt"].startswith("over the size cap")
    assert reasons["mangled.txt"].startswith("undecodable")
    assert reasons["loop"].startswith("symlink loop")
    assert reasons["self.txt"] == "symlink loop"
    assert [Path(o.path).name for o in summary.by_status("added")] == ["good.txt"]
    names = {Path(f.path).name for f in Documents(lambda: store.db).list()}
    assert names == {"garden.md", "good.txt"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files whatever their permissions")
def test_unreadable_file_is_reported(store, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    secret.chmod(0)
    try:
        summary = Ingester(lambda: store.db).add([secret], embed=False)
    finally:
        secret.chmod(0o600)
    assert summary.by_status("failed")[0].reason == "permission denied"


def test_canary_never_reaches_disk_in_plaintext(store, folder: Path, embedder: Embedder, hearth_home: Path) -> None:
    (folder / "diary.txt").write_text(f"Dear diary, today: {corpus.CANARY}.\n" * 20)
    _ingester(store, embedder).add([folder])
    hits = Searcher(lambda: store.db, embedder).search("Zanzibar canary quokka lullaby", k=3)
    assert any(corpus.CANARY in h.text for h in hits)
    store.close()
    needles = [corpus.CANARY.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be")]
    needles += [b"Zanzibar-canary-7f3a9c", "Zanzibar-canary-7f3a9c".encode("utf-16-le")]
    scanned = 0
    for path in hearth_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            assert not any(n in data for n in needles), f"canary in plaintext in {path.name}"
    assert scanned >= 1


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from storage.ingest import Ingester
    from storage.store import Store

    store = Store.open()
    def progress(p):
        print(p.done, flush=True)
        time.sleep(0.15)  # widen the window so the parent's kill lands mid-batch
    Ingester(lambda: store.db).add([sys.argv[1]], progress=progress, embed=False)
    print("finished", flush=True)
    """
)


def test_resume_after_sigkill_has_no_duplicates(store, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):
        paras = "\n\n".join(f"File {i} paragraph {j}: " + "lorem ipsum dolor sit amet " * 12 for j in range(8))
        (src / f"note{i:02d}.md").write_text(f"# Note {i}\n\n{paras}\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(src)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().isdigit() and int(line) >= 8:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    docs = Documents(lambda: store.db)
    partial = docs.counts()["files"]
    assert 8 <= partial < 40
    summary = Ingester(lambda: store.db).add([src], embed=False)
    assert summary.counts()["skipped"] == partial and summary.counts()["added"] == 40 - partial
    assert docs.counts()["files"] == 40
    dupes = store.db.execute(
        "SELECT count(*) FROM (SELECT document_id, text FROM doc_chunks GROUP BY document_id, seq HAVING count(*) > 1)"
    ).fetchone()[0]
    assert dupes == 0
    per_file = store.db.execute(
        "SELECT count(*) FROM doc_chunks c JOIN documents d ON d.id = c.document_id GROUP BY d.file_id"
    ).fetchall()
    assert len({n for (n,) in per_file}) == 1  # every file, killed or not, has its full set of chunks
    fts = store.db.execute("SELECT count(*) FROM doc_chunks_fts WHERE doc_chunks_fts MATCH 'lorem'").fetchone()[0]
    assert fts == docs.counts()["chunks"]


def test_embedding_resumes_after_cancel(store, folder: Path, embedder: Embedder) -> None:
    ingester = Ingester(lambda: store.db, embedder, embed_batch=4)
    calls = {"n": 0}

    def stop_after_two_batches() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    ingester.add([folder], embed=False)
    first = ingester.embed_pending(should_stop=stop_after_two_batches)
    assert first == 8
    docs = Documents(lambda: store.db)
    assert docs.count_unembedded() > 0
    ingester.embed_pending()
    assert docs.count_unembedded() == 0 and docs.counts()["embedded"] == docs.counts()["chunks"]


def test_file_swapped_for_a_fifo_after_discovery_gets_a_reason(store, tmp_path: Path) -> None:
    """Discovery saw regular files; the second becomes a named pipe before it is read. Opening a FIFO for
    reading blocks until a writer comes, so without O_NONBLOCK this test would hang."""
    folder = tmp_path / "swap"
    folder.mkdir()
    (folder / "a.md").write_text("# First\n\nThe first note, about herons.\n")
    (folder / "b.md").write_text("# Second\n\nThe second note, about egrets.\n")
    (folder / "c.md").write_text("# Third\n\nThe third note, about storks.\n")

    def swap(progress) -> None:  # type: ignore[no-untyped-def]
        if progress.phase == "index" and progress.current == "a.md":
            (folder / "b.md").unlink()
            os.mkfifo(folder / "b.md")

    summary = Ingester(lambda: store.db).add([folder], progress=swap, embed=False)
    outcomes = {Path(o.path).name: o for o in summary.outcomes}
    assert outcomes["b.md"].status == "failed"
    assert outcomes["b.md"].reason == "not a regular file (it became a named pipe, socket or device)"
    assert outcomes["a.md"].status == outcomes["c.md"].status == "added"


def test_stop_during_a_slow_file_takes_effect_within_a_second(store, tmp_path: Path) -> None:
    import threading
    import time

    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "a.md").write_text("# Quick\n\nA quick note about kestrels.\n")
    corpus.write_pdf(folder / "b.pdf", [f"Page {n} of the harbour survey." for n in range(4000)])
    (folder / "c.md").write_text("# Later\n\nNever reached.\n")
    stop = threading.Event()
    asked = {}

    def on_progress(progress) -> None:  # type: ignore[no-untyped-def]
        if progress.current == "a.md":  # b.pdf (seconds of parsing) is next
            asked["at"] = time.monotonic() + 0.3
            threading.Timer(0.3, stop.set).start()

    summary = Ingester(lambda: store.db).add([folder], progress=on_progress, should_stop=stop.is_set, embed=False)
    assert time.monotonic() - asked["at"] < 1.0
    assert summary.cancelled
    assert [Path(o.path).name for o in summary.outcomes] == ["a.md"]
    assert [Path(p).name for p in Documents(lambda: store.db).paths()] == ["a.md"]


def test_the_embedding_bar_shows_before_the_model_loads(store, tmp_path: Path) -> None:
    """A first run converts the embedder (and, on some CPUs, quantizes it): a minute the bar must not hide."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "herons.md").write_text("# Herons\n\nHerons wade in the shallows at dawn.\n")
    embedder, seen = Embedder(), []
    real_load = embedder.load

    def load() -> None:
        seen.append("load")
        real_load()

    embedder.load = load  # type: ignore[method-assign]
    _ingester(store, embedder).add([notes], progress=lambda p: seen.append(f"{p.phase} {p.done}/{p.total}"))
    embedding = [s for s in seen if not s.startswith("index")]
    assert embedding[:2] == ["embed 0/1", "load"] and embedding[-1] == "embed 1/1", seen
