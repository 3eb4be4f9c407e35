"""`hearth add / docs / search / forget` and `hearth ask --docs` as a user runs them: real subprocesses."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

_spec = importlib.util.spec_from_file_location("docs_corpus", Path(__file__).parents[1] / "data/docs/corpus.py")
corpus = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["docs_corpus"] = corpus
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]

ENV = {"HEARTH_PASSPHRASE": "correct horse battery staple", "HEARTH_KEYRING": "0"}


@pytest.mark.slow
def test_add_search_docs_forget(hearth: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    folder = corpus.build(tmp_path / "corpus", distractors=1)
    (folder / "empty.txt").write_bytes(b"")
    corpus.write_zip_bomb_docx(folder / "bomb.docx", inflated_mb=250)

    added = hearth("add", str(folder), "--exclude", "*.csv", "--json")
    assert added.returncode == 0, added.stderr
    summary = json.loads(added.stdout)
    assert summary["added"] == 10 and summary["failed"] == 2 and summary["pending_vectors"] == 0
    reasons = {Path(f["path"]).name: f["reason"] for f in summary["failures"]}
    assert reasons["empty.txt"].startswith("empty file") and "zip bomb" in reasons["bomb.docx"]
    assert "embedding [" in added.stderr  # the progress bar

    found = hearth("search", "At what temperature does the sourdough starter ferment?", "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 3 and {"source", "location", "text", "score"} <= set(hits[0])
    assert Path(hits[0]["source"]).name == "baking.pdf" and hits[0]["location"] == "p. 2"

    asked = hearth(
        "ask", "--docs", "--json", "--temperature", "0", "--max-tokens", "48", "When is my dentist appointment?"
    )
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["answer"] and Path(answer["sources"][0]["source"]).name == "inbox.mbox"
    assert answer["sources"][0]["location"] == "message 2: Dentist appointment"
    unrelated = hearth(
        "ask", "--docs", "--json", "--temperature", "0", "--max-tokens", "16", "Who won the 1954 World Cup?"
    )
    assert unrelated.returncode == 0, unrelated.stderr
    assert json.loads(unrelated.stdout)["sources"] == []  # nothing relevant: no noise fed, no sources claimed

    listed = hearth("docs", "--json")
    assert listed.returncode == 0, listed.stderr
    statuses = {Path(d["path"]).name: d["status"] for d in json.loads(listed.stdout)}
    assert "baking.pdf" in statuses and "contacts.csv" not in statuses
    assert statuses.pop("empty.txt") == "failed: empty file (0 bytes)"
    assert statuses.pop("bomb.docx").startswith("failed:")
    assert set(statuses.values()) == {"indexed"}
    failed = json.loads(hearth("docs", "--failed", "--json").stdout)
    assert {Path(f["path"]).name: f["status"].split(":")[0] for f in failed} == {
        "empty.txt": "failed",
        "bomb.docx": "failed",
    }
    table = hearth("docs").stdout
    failed_rows = [line for line in table.splitlines() if " failed " in line]
    assert "indexed" in table and any("/empty.txt: empty file" in line for line in failed_rows)
    (folder / "empty.txt").write_text("Not empty any more: the spare key is under the blue pot.\n")
    (folder / "bomb.docx").unlink()
    assert hearth("add", str(folder), "--exclude", "*.csv", "--no-embed").returncode == 0
    assert hearth("docs", "--prune").returncode == 0
    assert json.loads(hearth("docs", "--failed", "--json").stdout) == []
    waiting = {Path(d["path"]).name: d["status"] for d in json.loads(hearth("docs", "--json").stdout)}
    assert waiting["empty.txt"] == "waiting (1 of 1 chunks await vectors)" and waiting["baking.pdf"] == "indexed"

    again = hearth("add", str(folder), "--exclude", "*.csv")
    assert again.returncode == 0 and "skipped 11 unchanged" in again.stdout, again.stdout

    forgot = hearth("forget", "baking.pdf")
    assert forgot.returncode == 0 and "baking.pdf" in forgot.stdout
    missing = hearth("forget", "baking.pdf")
    assert missing.returncode == 1 and missing.stderr.startswith("hearth: no indexed document")
    plain = hearth("search", "sourdough starter temperature")
    assert plain.returncode == 0 and "baking.pdf" not in plain.stdout
