"""One personalization run, start to finish: data -> train -> export -> evaluate in llama.cpp -> keep.

The CLI runs this in the foreground and the app's background job runs the same function in a low-priority
process. A new adapter becomes active only if its held-out perplexity, measured in llama.cpp (the runtime
the chat uses), beats both the base and the adapter active now; otherwise it is kept as a version but not
switched to. An interrupted run (pause, cancel, kill -9) leaves an encrypted checkpoint that the next run
resumes; a finished run deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from personalize import base, dataset, export_gguf, registry, runtime, store_io
from personalize.train import Progress, TrainConfig
from storage.errors import KnownError


@dataclass
class RunReport:
    state: str  # "activated" | "kept" (trained, not better) | "paused" | "cancelled"
    adapter_id: str | None = None
    base_ppl: float | None = None
    adapter_ppl: float | None = None
    previous_ppl: float | None = None  # the adapter active before this run, on the same held-out text
    steps: int = 0
    tokens_trained: int = 0
    train_tokens: int = 0
    heldout_tokens: int = 0


def run(
    store: Any,
    cfg: TrainConfig | None = None,
    gguf_path: Path | None = None,
    progress: Callable[[Progress], None] = lambda p: None,
    should_stop: Callable[[], str | None] = lambda: None,
    data_override: tuple[list[dataset.Document], list[dataset.Conversation]] | None = None,
) -> RunReport:
    """Train (or resume), then export, evaluate and register. `should_stop` returns "pause"/"cancel"/None."""
    cfg = cfg or TrainConfig()
    info = base.inspect(gguf_path)
    reg = registry.Registry(store)
    documents, conversations = data_override or store_io.read_training_data(store)
    dataset.precheck(documents, conversations)
    progress(Progress(0, 0, float("nan"), 0.0, float("nan"), 0, "loading"))
    model, tokenizer = base.load(info)
    data = dataset.build(documents, conversations, dataset.Tokenizer.from_hf(tokenizer), cfg.seq_len)

    checkpoint = reg.checkpoint()
    parent = reg.active()
    init_lora = None
    if checkpoint is not None:
        from personalize.train import load_checkpoint

        try:
            state = load_checkpoint(checkpoint)
        except KnownError:
            state, checkpoint = None, None
            reg.drop_checkpoint()
        if state is not None and (
            state.get("base_sha256") != info.sha256 or state.get("data_fingerprint") != data.fingerprint
        ):
            # Data changed since the interruption: keep what was learnt, restart the schedule on the new data.
            init_lora, checkpoint = (state["lora"] if state.get("base_sha256") == info.sha256 else None), None
    if checkpoint is None and init_lora is None and parent is not None and parent.base_sha256 == info.sha256:
        init_lora = reg.lora_state(parent.id)  # incremental: continue from the active adapter

    from personalize import train as trainer

    stop_reason: list[str] = []

    def stop() -> bool:
        reason = should_stop()
        if reason:
            stop_reason.append(reason)
        return bool(reason)

    def save(blob: bytes) -> None:
        reg.save_checkpoint(blob)

    result = trainer.train(
        model,
        data,
        replace(cfg),
        progress=progress,
        should_stop=stop,
        save_checkpoint=save,
        checkpoint=checkpoint,
        init_lora=init_lora,
        base_sha256=info.sha256,
    )
    report = RunReport(
        state="paused",
        steps=result.step,
        tokens_trained=result.tokens_seen,
        train_tokens=data.train_tokens,
        heldout_tokens=data.heldout_tokens,
    )
    if result.stopped:
        if stop_reason and stop_reason[-1] == "cancel":
            reg.drop_checkpoint()
            report.state = "cancelled"
        return report

    progress(Progress(result.step, result.max_steps, result.final_loss, 0.0, 0.0, result.tokens_seen, "evaluating"))
    gguf = export_gguf.to_gguf(result.lora_state, cfg.alpha, info)
    llama = open_llama(info.path, cfg.seq_len)
    report.base_ppl = runtime.perplexity_tokens(llama, data.heldout)
    if parent is not None and parent.base_sha256 == info.sha256:
        handle = runtime.load_adapter(llama, reg.gguf_bytes(parent.id), info.sha256)
        runtime.activate(llama, handle)
        report.previous_ppl = runtime.perplexity_tokens(llama, data.heldout)
        runtime.activate(llama, None)
        runtime.free(llama, handle)
    handle = runtime.load_adapter(llama, gguf, info.sha256)
    runtime.activate(llama, handle)
    report.adapter_ppl = runtime.perplexity_tokens(llama, data.heldout)
    runtime.activate(llama, None)
    runtime.free(llama, handle)
    del llama

    record = registry.AdapterRecord(
        id=registry.new_id(),
        created=_now(),
        base_sha256=info.sha256,
        base_ppl=report.base_ppl,
        adapter_ppl=report.adapter_ppl,
        tokens_trained=result.tokens_seen + (parent.tokens_trained if parent and init_lora is not None else 0),
        steps=result.step,
        parent=parent.id if parent and init_lora is not None else None,
        config={"rank": cfg.rank, "alpha": cfg.alpha, "target_modules": list(cfg.target_modules)},
    )
    reg.add(gguf, result.lora_state, record)
    best_so_far = min(p for p in (report.base_ppl, report.previous_ppl) if p is not None)
    if report.adapter_ppl < best_so_far:
        reg.set_active(record.id)
        report.state = "activated"
    else:
        report.state = "kept"
    reg.drop_checkpoint()
    report.adapter_id = record.id
    return report


def open_llama(path: Path, n_ctx: int = 512) -> Any:
    """A private llama.cpp instance for evaluation (batch = context, so one window is one decode)."""
    import llama_cpp

    from storage.machine import physical_cores

    threads = physical_cores()
    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, verbose=False)


def evaluate_files(store: Any, files: list[Path], gguf_path: Path | None = None, window: int = 512) -> dict[str, Any]:
    """`hearth personalize eval`: perplexity of files under the base and under the active adapter."""
    info = base.inspect(gguf_path)
    texts = []
    for file in files:
        try:
            texts.append(Path(file).read_text(encoding="utf-8", errors="replace"))
        except OSError as err:
            raise KnownError(f"Cannot read {Path(file).name}.") from err
    reg = registry.Registry(store)
    active = reg.active()
    llama = open_llama(info.path, window)
    out: dict[str, Any] = {"base_ppl": runtime.perplexity(llama, texts, window), "adapter": None, "adapter_ppl": None}
    if active is not None:
        handle = runtime.load_adapter(llama, reg.gguf_bytes(active.id), info.sha256)
        runtime.activate(llama, handle)
        out["adapter"] = active.id
        out["adapter_ppl"] = runtime.perplexity(llama, texts, window)
        runtime.activate(llama, None)
        runtime.free(llama, handle)
    return out


def _now() -> str:
    from storage.timeutil import now

    return now()
