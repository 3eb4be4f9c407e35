"""`hearth ask` / `hearth chat` / `hearth doctor` / `hearth models` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

PASSPHRASE = "correct horse battery staple"


QUESTION = "What is the capital of France?"


def test_ask_json_answers_and_saves_to_history(hearth: Cli, plain_answer) -> None:  # type: ignore[no-untyped-def]
    env = {"HEARTH_PASSPHRASE": PASSPHRASE, "HEARTH_KEYRING": "0"}
    result = hearth("ask", "--json", "--temperature", "0", "--max-tokens", "32", QUESTION, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"].strip() and data["answer"] == plain_answer(QUESTION, 32)  # the same tokens
    assert data["conversation_id"] is not None
    history = hearth("history", "--json", env=env)
    assert history.returncode == 0, history.stderr
    assert any("capital of France" in c["title"] for c in json.loads(history.stdout))


def test_ask_streams_plain_text(hearth: Cli, hearth_home: Path, plain_answer) -> None:  # type: ignore[no-untyped-def]
    result = hearth("ask", "--no-save", "--temperature", "0", "--max-tokens", "32", QUESTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain_answer(QUESTION, 32) + "\n"
    assert not (hearth_home / "hearth.db").exists(), "--no-save must not create a store"


def test_chat_repl_new_and_quit(hearth: Cli, plain_answer) -> None:  # type: ignore[no-untyped-def]
    env = {"HEARTH_PASSPHRASE": PASSPHRASE, "HEARTH_KEYRING": "0"}
    script = f"{QUESTION}\n/new\nSay hello.\n/quit\n"
    result = hearth("chat", "--temperature", "0", "--max-tokens", "32", stdin=script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(plain_answer(QUESTION, 32) + "\n(new conversation)\n")
    assert "(new conversation)" in result.stdout
    history = json.loads(hearth("history", "--json", env=env).stdout)
    assert len(history) == 2


def test_doctor_reports_model_threads_and_data_dir(hearth: Cli, hearth_home: Path) -> None:
    result = hearth("doctor", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    facts = json.loads(result.stdout)
    assert facts["data_dir"] == str(hearth_home)
    assert facts["threads"] >= 1
    assert facts["models"][0]["arch"] == "llama"
    assert facts["problems"] == []


def test_corrupt_model_is_one_clear_line(hearth: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + os.urandom(64))
    result = hearth("models", "add", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith("hearth: broken.gguf")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    listing = hearth("models", "list")
    assert "broken" not in listing.stdout
