"""Every supported architecture, round trip: GGUF -> torch -> LoRA -> GGUF adapter -> llama.cpp, same numbers.

The fixtures (tests/fixtures/tiny/, made by tests/fixtures/make_tiny_models.py with llama.cpp's own converter)
are random-weight models of each architecture at toy size. For each: the torch base loaded from the GGUF
predicts what llama.cpp predicts; a LoRA trained briefly in torch lowers held-out perplexity a lot; and the
exported adapter, loaded into llama.cpp, gives the perplexity torch gives within 2%, also when only the top
layers carry a LoRA (the adapter then has no tensors for the others). The last test shows the check has
teeth: an export that skips llama's q/k permutation is caught.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tiny"
MODELS = ["llama-smollm2", "llama-3", "qwen2", "qwen3", "gemma3", "phi3"]


@dataclasses.dataclass
class Run:
    info: Any
    heldout: list[list[int]]
    torch_base_ppl: float
    torch_adapter_ppl: float
    lora_state: dict[str, Any]
    alpha: float


def train_tiny(name: str, documents: list[tuple[str, str]], layer_fraction: float = 1.0) -> Run:
    import torch

    from personalize import base, dataset
    from personalize import train as trainer

    info = base.inspect(FIXTURES / f"{name}.gguf")
    model, tokenizer = base.load(info)
    data = dataset.build(documents, [], dataset.Tokenizer.from_hf(tokenizer), seq_len=64)
    heldout = data.heldout[:6]
    torch_base_ppl = trainer.evaluate(model, heldout)
    cfg = trainer.TrainConfig(
        seq_len=64,
        batch_size=4,
        max_steps=24,
        warmup_steps=2,
        lr=1e-2,
        seed=1,
        threads=1,
        layer_fraction=layer_fraction,
    )
    torch.manual_seed(0)
    result = trainer.train(model, data, cfg)
    torch_adapter_ppl = trainer.evaluate(model, heldout)  # the model now carries the LoRA layers
    return Run(info, heldout, torch_base_ppl, torch_adapter_ppl, result.lora_state, cfg.alpha)


def llama_ppl(info: Any, heldout: list[list[int]], adapter: bytes | None) -> float:
    import llama_cpp

    from personalize import runtime

    llama = llama_cpp.Llama(model_path=str(info.path), n_ctx=128, n_batch=128, n_threads=1, verbose=False)
    try:
        if adapter is None:
            return runtime.perplexity_tokens(llama, heldout)
        handle = runtime.load_adapter(llama, adapter, info.sha256)
        runtime.activate(llama, handle)
        ppl = runtime.perplexity_tokens(llama, heldout)
        runtime.activate(llama, None)
        runtime.free(llama, handle)
        return ppl
    finally:
        llama.close()


@pytest.fixture(scope="module")
def documents(ledger_documents: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return ledger_documents[:8]


@pytest.mark.parametrize("name", MODELS)
def test_adapter_changes_llama_cpp_as_it_changes_torch(name: str, documents: list[tuple[str, str]]) -> None:
    from personalize import export_gguf

    run = train_tiny(name, documents)
    assert run.info.architecture == name.split("-")[0]
    base_ppl = llama_ppl(run.info, run.heldout, None)
    assert abs(base_ppl / run.torch_base_ppl - 1) < 0.02, (base_ppl, run.torch_base_ppl)
    assert run.torch_adapter_ppl < 0.7 * run.torch_base_ppl  # the LoRA moved the model far more than 2%

    adapter_ppl = llama_ppl(run.info, run.heldout, export_gguf.to_gguf(run.lora_state, run.alpha, run.info))
    assert abs(adapter_ppl / run.torch_adapter_ppl - 1) < 0.02, (adapter_ppl, run.torch_adapter_ppl)
    assert export_gguf.fidelity_error(run.torch_adapter_ppl, adapter_ppl) is None


@pytest.mark.parametrize("name", ["llama-3", "gemma3", "phi3"])  # RoPE-permuted, 6 layers, fused tensors
def test_an_adapter_on_the_top_layers_only_changes_llama_cpp_as_it_changes_torch(
    name: str, documents: list[tuple[str, str]]
) -> None:
    import tempfile

    from gguf import GGUFReader

    from personalize import export_gguf

    run = train_tiny(name, documents, layer_fraction=0.5)
    adapter = export_gguf.to_gguf(run.lora_state, run.alpha, run.info)
    with tempfile.NamedTemporaryFile(suffix=".gguf") as file:  # random weights of a fixture: no user data
        file.write(adapter)
        file.flush()
        blocks = {int(t.name.split(".")[1]) for t in GGUFReader(file.name).tensors}
    n_layer = run.info.n_layer
    assert blocks == set(range(n_layer - n_layer // 2, n_layer)), blocks  # the lower half has no tensors at all
    assert run.torch_adapter_ppl < 0.9 * run.torch_base_ppl
    adapter_ppl = llama_ppl(run.info, run.heldout, adapter)
    assert abs(adapter_ppl / run.torch_adapter_ppl - 1) < 0.02, (adapter_ppl, run.torch_adapter_ppl)


def test_an_export_without_llamas_rope_permutation_is_caught(
    documents: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from personalize import architectures, export_gguf

    run = train_tiny("llama-3", documents)
    wrong = dataclasses.replace(architectures.ARCHITECTURES["llama"], rope_permuted=False)
    monkeypatch.setitem(architectures.ARCHITECTURES, "llama", wrong)
    adapter_ppl = llama_ppl(run.info, run.heldout, export_gguf.to_gguf(run.lora_state, run.alpha, run.info))
    message = export_gguf.fidelity_error(run.torch_adapter_ppl, adapter_ppl)
    assert message is not None and "llama.cpp" in message, (adapter_ppl, run.torch_adapter_ppl)


@pytest.mark.parametrize(("name", "break_export"), [("gemma3", False), ("llama-3", True)])
def test_pipeline_activates_only_adapters_llama_cpp_reproduces(
    name: str, break_export: bool, store: Any, documents: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from personalize import architectures, drift, pipeline, registry
    from personalize.train import TrainConfig

    # Random weights answer the general prompts with noise, so any training moves them far: this test is about
    # the fidelity gate alone (the forgetting guard has its own, tests/integration/test_personalize_drift.py).
    monkeypatch.setattr(drift, "DRIFT_LIMIT", float("inf"))
    if break_export:
        wrong = dataclasses.replace(architectures.ARCHITECTURES["llama"], rope_permuted=False)
        monkeypatch.setitem(architectures.ARCHITECTURES, "llama", wrong)
    cfg = TrainConfig(seq_len=64, batch_size=4, max_steps=24, warmup_steps=2, lr=1e-2, seed=1, threads=1)
    report = pipeline.run(store, cfg, FIXTURES / f"{name}.gguf", data_override=(documents, []))
    active = registry.Registry(store).active()
    if break_export:
        assert report.state == "kept" and report.refused and "not activated" in report.refused
        assert active is None  # the base model stays
    else:
        assert report.state == "activated" and report.refused is None, report
        assert active is not None and active.id == report.adapter_id
        assert report.adapter_ppl < 0.7 * report.base_ppl


def test_a_base_model_without_a_chat_template_gets_plain_general_prompts(store: Any) -> None:
    """Gemma 3 270M base ships no chat template: the forgetting guard still measures it, on plain transcripts
    that start with the model's BOS (tests/e2e/test_personalize_gemma.py runs the real model, under soak)."""
    from personalize import base, drift, pipeline

    info = base.inspect(FIXTURES / "gemma3.gguf")
    _, tokenizer = base.load(info)
    tokenizer.chat_template = None  # the tiny fixture has one; the real base model does not
    llama = pipeline.open_llama(info.path, 256, threads=1)
    try:
        general = drift.general_set(store, llama, tokenizer, info.sha256)
    finally:
        llama.close()
    spec = drift.prompts()
    plain = f"System: {spec['system']}\nUser: {spec['drift'][0]['prompt']}\nAssistant:"
    expected = [tokenizer.bos_token_id, *tokenizer(plain, add_special_tokens=False)["input_ids"]]
    assert general.drift[0].prompt == expected
    assert all(item.answer for item in general.drift + general.replay)  # the base answered every prompt
