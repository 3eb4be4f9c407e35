"""`hearth ask --attach` / `hearth chat --attach` and `/attach`, as a user runs them: real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

ENV = {"HEARTH_PASSPHRASE": "correct horse battery staple", "HEARTH_KEYRING": "0"}
ONE_TOKEN = ("--temperature", "0", "--max-tokens", "1")
NOTES = "The ferry to the island leaves at 07:40 from pier 3.\n"


def test_ask_attach_uses_the_file_for_this_chat_only(hearth: Cli, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    result = hearth("ask", "--json", *ONE_TOKEN, "--attach", str(notes), "When does the ferry leave?", env=ENV)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(a["name"], a["kind"], a["chars"]) for a in data["attachments"]] == [("notes.txt", "text", len(NOTES) - 1)]
    assert data["attachments"][0]["id"] is not None  # saved with the conversation
    assert data["sources"] == [{"source": "notes.txt", "location": "whole file", "attached": True}]
    plain = json.loads(hearth("ask", "--json", *ONE_TOKEN, "When does the ferry leave?", env=ENV).stdout)
    assert plain["attachments"] == [] and plain["sources"] == []
    assert data["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 10  # the file was in the prompt
    docs = hearth("docs", "--json", env=ENV)
    assert docs.returncode == 0, docs.stderr
    assert json.loads(docs.stdout) == []  # not added to the library


def test_attach_errors_are_one_line_and_no_save_writes_nothing(hearth: Cli, tmp_path: Path, hearth_home: Path) -> None:
    missing = hearth("ask", *ONE_TOKEN, "--no-save", "--attach", str(tmp_path / "gone.pdf"), "hi")
    assert missing.returncode == 1
    assert missing.stderr.startswith("hearth: cannot attach gone.pdf: cannot read")
    assert "Traceback" not in missing.stderr
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    result = hearth("ask", *ONE_TOKEN, "--no-save", "--attach", str(notes), "When does the ferry leave?")
    assert result.returncode == 0, result.stderr
    assert "[1] notes.md (whole file)" in result.stdout
    assert not (hearth_home / "hearth.db").exists(), "--no-save must not create a store"


def test_chat_attach_command(hearth: Cli, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    script = f"/attach {notes}\n/attach {tmp_path / 'nope.txt'}\nWhen does the ferry leave?\n/quit\n"
    result = hearth("chat", *ONE_TOKEN, stdin=script, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"(attached notes.txt: {len(NOTES) - 1} characters)\n")
    assert "hearth: cannot attach nope.txt: cannot read" in result.stderr
