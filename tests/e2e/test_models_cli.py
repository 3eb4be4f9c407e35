"""`hearth models scan / add / list` and asking through a found model, under a temporary HOME holding an
Ollama store and an LM Studio folder with the real bundled GGUF in them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.model_homes import LMSTUDIO_NAME, make_home_with_models

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

QUESTION = "What is the capital of Germany?"


@pytest.fixture
def home_with_models(tmp_path: Path, bundled_model: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    return make_home_with_models(tmp_path / "home", bundled_model, monkeypatch)


def test_scan_finds_ollama_and_lmstudio_models_with_their_facts(hearth: Cli, home_with_models: dict) -> None:
    result = hearth("models", "scan", "--json")
    assert result.returncode == 0, result.stderr
    found = {m["name"]: m for m in json.loads(result.stdout)}
    assert set(found) == {"smollm2:135m", LMSTUDIO_NAME}
    ollama, lmstudio = found["smollm2:135m"], found[LMSTUDIO_NAME]
    assert ollama["source"] == "ollama" and lmstudio["source"] == "lmstudio"
    assert ollama["path"] == str(home_with_models["blob"]) and ollama["sha256"] == str(home_with_models["sha"])
    for m in (ollama, lmstudio):
        assert m["architecture"] == "llama" and m["quantization"] == "Q4_1"
        assert m["size_bytes"] == home_with_models["blob"].stat().st_size
        assert m["ram_bytes"] > m["size_bytes"]  # weights + KV cache at 4096 + buffers (test_model_fit.py)
        assert m["chat"] is True and m["personalization"] is True
        assert m["context_length"] == 8192
    table = hearth("models", "scan")
    assert "smollm2:135m" in table.stdout and "ollama" in table.stdout


def test_a_found_model_registers_in_place_and_answers(hearth: Cli, home_with_models: dict, plain_answer) -> None:  # type: ignore[no-untyped-def]
    added = hearth("models", "add", "smollm2:135m")
    assert added.returncode == 0, added.stderr
    assert "in place" in added.stdout
    settings = json.loads((Path(os.environ["HEARTH_HOME"]) / "settings.json").read_text())
    entry = settings["models"]["smollm2:135m"]
    assert entry == {"path": str(home_with_models["blob"]), "sha256": str(home_with_models["sha"]), "source": "ollama"}
    asked = hearth("--model", "smollm2:135m", "ask", "--no-save", "--temperature", "0", "--max-tokens", "24", QUESTION)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout == plain_answer(QUESTION, 24) + "\n"  # the same file, framing and tokens as the bundled one
    counted = hearth(
        "--model", "smollm2:135m", "ask", "--no-save", "--max-tokens", "24", "Write a long story about a dragon."
    )
    assert counted.returncode == 0, counted.stderr
    row = next(line for line in hearth("models", "list").stdout.splitlines() if " smollm2:135m " in line)
    assert re.search(r" \d+\.\d tok/s ", row), row  # the speed measured on that reply


def test_a_registered_file_that_vanished_is_one_clear_line(hearth: Cli, home_with_models: dict) -> None:
    assert hearth("models", "add", LMSTUDIO_NAME, "--name", "lm").returncode == 0
    home_with_models["lmstudio"].unlink()
    asked = hearth("--model", "lm", "ask", "--no-save", "hello")
    assert asked.returncode == 1
    assert asked.stderr.startswith("hearth: model 'lm' was registered from ") and "no longer exists" in asked.stderr
    assert len(asked.stderr.strip().splitlines()) == 1
    listing = hearth("models", "list")
    assert listing.returncode == 0 and "unavailable" in listing.stdout


def test_a_replaced_file_is_refused(hearth: Cli, home_with_models: dict) -> None:
    assert hearth("models", "add", LMSTUDIO_NAME, "--name", "lm").returncode == 0
    data = bytearray(home_with_models["lmstudio"].read_bytes())
    data[-1] ^= 0xFF  # the last tensor byte: still a valid GGUF, no longer the registered file
    home_with_models["lmstudio"].write_bytes(bytes(data))
    asked = hearth("--model", "lm", "ask", "--no-save", "hello")
    assert asked.returncode == 1 and "changed since it was registered" in asked.stderr
