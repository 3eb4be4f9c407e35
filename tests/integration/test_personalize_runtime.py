"""End to end on the bundled model: train a LoRA, export it to GGUF, load it into llama.cpp, check it there.

One short training run (module-scoped) feeds every test: llama.cpp's perplexity with the adapter agrees with
torch's within 2% and beats the base on held-out text of the same style; hot swap changes outputs without
reloading the model; turning it off restores the base exactly; a corrupt or foreign adapter is refused and
the adapter that was active keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.errors import KnownError

pytestmark = pytest.mark.slow

PROMPT = "Ledger of the Drizzleworks, day 7."


@dataclass
class Trained:
    info: Any
    gguf: bytes
    torch_ppl: float
    heldout: list[list[int]]


@pytest.fixture(scope="module")
def trained(converted_base_dir: Path, ledger_documents: list[tuple[str, str]], tmp_path_factory) -> Trained:
    import os

    import torch

    from personalize import base, dataset, export_gguf
    from personalize import train as trainer

    os.environ["HEARTH_HOME"] = str(tmp_path_factory.mktemp("trained-home"))
    from storage import paths

    (paths.cache() / converted_base_dir.name).symlink_to(converted_base_dir, target_is_directory=True)
    info = base.inspect(base.bundled_gguf())
    model, tokenizer = base.load(info)
    data = dataset.build(ledger_documents, [], dataset.Tokenizer.from_hf(tokenizer), seq_len=128)
    cfg = trainer.TrainConfig(seq_len=128, batch_size=2, max_steps=16, warmup_steps=2, lr=3e-3, seed=1, threads=1)
    torch.manual_seed(0)
    result = trainer.train(model, data, cfg)
    assert not result.stopped and result.step == 16
    torch_ppl = trainer.evaluate(model, data.heldout)  # model now carries the LoRA layers
    gguf = export_gguf.to_gguf(result.lora_state, cfg.alpha, info)
    return Trained(info=info, gguf=gguf, torch_ppl=torch_ppl, heldout=data.heldout)


@pytest.fixture(scope="module")
def llama(trained: Trained):
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(trained.info.path), n_ctx=256, n_batch=256, n_threads=2, verbose=False)
    yield model
    model.close()


def greedy(llama: Any, prompt: str = PROMPT, n: int = 24) -> str:
    # From an empty cache every time: a prompt reused from the cache ends on a one-token batch whose logits
    # differ in the last bits, which flips a near tie and would read as "the adapter changed".
    llama.reset()
    out = llama.create_completion(prompt, max_tokens=n, temperature=0.0, top_k=1, seed=0)
    return str(out["choices"][0]["text"])


def test_llama_cpp_perplexity_matches_torch_and_beats_base(trained: Trained, llama: Any) -> None:
    from personalize import runtime

    base_ppl = runtime.perplexity_tokens(llama, trained.heldout)
    handle = runtime.load_adapter(llama, trained.gguf, trained.info.sha256)
    runtime.activate(llama, handle)
    try:
        adapter_ppl = runtime.perplexity_tokens(llama, trained.heldout)
    finally:
        runtime.activate(llama, None)
        runtime.free(llama, handle)
    assert abs(adapter_ppl - trained.torch_ppl) / trained.torch_ppl < 0.02, (adapter_ppl, trained.torch_ppl)
    assert adapter_ppl < 0.9 * base_ppl, (adapter_ppl, base_ppl)


def test_hot_swap_changes_output_and_off_restores_base(trained: Trained, llama: Any) -> None:
    from personalize.live import LiveAdapter

    model_pointer = llama.model
    before = greedy(llama)
    slot = LiveAdapter(llama, trained.info.sha256)
    slot.use("a1", trained.gguf)
    with_adapter = greedy(llama)
    assert with_adapter != before
    assert llama.model is model_pointer  # same model object: swapped, not reloaded
    slot.off()
    assert greedy(llama) == before  # rollback to base restores the previous behaviour exactly
    slot.use("a1", trained.gguf)
    assert greedy(llama) == with_adapter
    slot.off()


def test_corrupt_or_foreign_adapter_is_refused_and_previous_stays_active(trained: Trained, llama: Any) -> None:
    from personalize.live import LiveAdapter

    slot = LiveAdapter(llama, trained.info.sha256)
    slot.use("good", trained.gguf)
    expected = greedy(llama)
    corrupt = bytearray(trained.gguf)
    corrupt[len(corrupt) // 2 :] = b"\x00" * (len(corrupt) - len(corrupt) // 2)
    truncated = trained.gguf[: len(trained.gguf) // 3]
    for bad in (truncated, bytes(corrupt[:200]), b"not a gguf at all"):
        with pytest.raises(KnownError):
            slot.use("bad", bad)
        assert slot.active_id == "good"
        assert greedy(llama) == expected
    foreign = trained.gguf.replace(trained.info.sha256.encode(), b"0" * 64)
    with pytest.raises(KnownError, match="different base model"):
        slot.use("foreign", foreign)
    assert slot.active_id == "good" and greedy(llama) == expected
    slot.off()
