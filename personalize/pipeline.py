"""One personalization run, start to finish: data -> train -> export -> evaluate in llama.cpp -> keep.

The CLI runs this in the foreground and the app's background job runs the same function in a low-priority
process. A new adapter becomes active only if it helps and does not harm, both measured in llama.cpp (the
runtime the chat uses): its held-out perplexity on the user's unseen text beats both the base and the adapter
active now, and its drift on general assistant text (`drift`) stays under `drift.DRIFT_LIMIT`. Otherwise it
is kept as a version but not switched to ("kept": not better; "refused": it forgot too much). Training mixes
in the base's own general answers as replay, so a normal run rarely drifts. Every version records the proof
the user sees: gain, drift, tokens, time, and three before/after completions of held-out passages.

An interrupted run (pause, cancel, kill -9) leaves an encrypted checkpoint that the next run resumes; a
finished run deletes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from personalize import architectures, base, dataset, drift, estimate, export_gguf, memory, registry, runtime, store_io
from personalize.train import Progress, TrainConfig
from storage.errors import KnownError

# Share of training tokens that are the base's own general answers (replay). Measured on the bundled model
# (README, "Forgetting guard"): it keeps drift down at a small cost in held-out gain.
REPLAY_FRACTION = 0.2
EVAL_CTX = 256  # the general prompts with their answers fit; held-out windows are seq_len (batch = context)
SAMPLES = 3
SAMPLE_PROMPT_TOKENS = 48  # the start of a held-out passage the models continue
SAMPLE_TOKENS = 32  # how much each model writes (and how much of the user's own continuation is shown)


@dataclass
class RunReport:
    state: str  # "activated" | "kept" (not better) | "refused" (drifted too far) | "paused" | "cancelled"
    adapter_id: str | None = None
    base_ppl: float | None = None
    adapter_ppl: float | None = None
    previous_ppl: float | None = None  # the adapter active before this run, on the same held-out text
    steps: int = 0
    tokens_trained: int = 0
    train_tokens: int = 0
    heldout_tokens: int = 0
    refused: str | None = None  # why a trained adapter was not activated (fidelity or drift; numbers only)
    drift: float | None = None  # general-answer perplexity ratio, adapter / base
    seconds: float = 0.0
    near_duplicates: int = 0
    samples: list[dict[str, str]] = field(default_factory=list, repr=False)  # user text: never in the status file


def run(
    store: Any,
    cfg: TrainConfig | None = None,
    gguf_path: Path | None = None,
    progress: Callable[[Progress], None] = lambda p: None,
    should_stop: Callable[[], str | None] = lambda: None,
    data_override: tuple[list[dataset.Document], list[dataset.Conversation]] | None = None,
    replay_fraction: float = REPLAY_FRACTION,
) -> RunReport:
    """Train (or resume), then export, evaluate and register. `should_stop` returns "pause"/"cancel"/None."""
    started = time.monotonic()
    info = base.inspect(gguf_path)
    cfg = replace(cfg or TrainConfig())
    cfg.target_modules = cfg.target_modules or architectures.get(info.architecture).targets
    reg = registry.Registry(store)
    documents, conversations = data_override or store_io.read_training_data(store)
    dataset.precheck(documents, conversations)
    progress(Progress(0, 0, float("nan"), 0.0, float("nan"), 0, "loading"))
    from personalize import train as trainer

    if not cfg.micro_batch:  # refuse now, with the number, rather than swap an hour into the run
        trainer.memory_plan(memory.Shape.from_base(info), cfg)
    model, tokenizer = base.load(info, trainer.base_dtype(cfg))
    llama = open_llama(info.path, max(cfg.seq_len, EVAL_CTX), cfg.threads)
    general = drift.general_set(store, llama, tokenizer, info.sha256)
    data = dataset.build(
        documents,
        conversations,
        dataset.Tokenizer.from_hf(tokenizer),
        cfg.seq_len,
        replay=drift.replay_sequences(general),
        replay_fraction=replay_fraction,
    )

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
    estimate.record_rate(info, result.tokens_per_s)
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
    report.near_duplicates = data.near_duplicates
    prompts = _sample_prompts(data.heldout)
    report.base_ppl = runtime.perplexity_tokens(llama, data.heldout)
    general_base = drift.score(llama, general.drift)
    before = [runtime.complete(llama, p, len(truth)) for p, truth in prompts]
    if parent is not None and parent.base_sha256 == info.sha256:
        with adapter_active(llama, reg.gguf_bytes(parent.id), info.sha256):
            report.previous_ppl = runtime.perplexity_tokens(llama, data.heldout)
    with adapter_active(llama, gguf, info.sha256):
        report.adapter_ppl = runtime.perplexity_tokens(llama, data.heldout)
        general_adapter = drift.score(llama, general.drift)
        after = [runtime.complete(llama, p, len(truth)) for p, truth in prompts]
    del llama
    report.drift = drift.drift(general_base, general_adapter)
    report.samples = [
        {
            "prompt": _text(tokenizer, start),
            "truth": _text(tokenizer, truth),
            "base": _text(tokenizer, b),
            "adapter": _text(tokenizer, a),
        }
        for (start, truth), b, a in zip(prompts, before, after, strict=True)
    ]

    best_so_far = min(p for p in (report.base_ppl, report.previous_ppl) if p is not None)
    # Not activated: llama.cpp does not reproduce torch's adapter (a whole sentence, for the CLI), it forgot
    # too much (state "refused"), or it is not better than the model in use (state "kept").
    # Drift is measured in llama.cpp on both sides, so it stands even where the export check fails too (an
    # over-trained adapter on the AVX2 path: llama.cpp 20.07 vs torch 20.73): the user hears the cause first.
    drifted = report.drift > drift.DRIFT_LIMIT
    report.refused = None if drifted else export_gguf.fidelity_error(result.heldout_ppl, report.adapter_ppl)
    refused = report.refused
    if drifted:
        refused = (
            f"it changed the model's general answers too much (drift {report.drift:.2f}x, "
            f"limit {drift.DRIFT_LIMIT:.2f}x)"
        )
    elif refused is None and report.adapter_ppl >= best_so_far:
        refused = "it did not predict your unseen text better than the model in use"
    report.seconds = time.monotonic() - started
    record = registry.AdapterRecord(
        id=registry.new_id(),
        created=_now(),
        base_sha256=info.sha256,
        base_ppl=report.base_ppl,
        adapter_ppl=report.adapter_ppl,
        tokens_trained=result.tokens_seen + (parent.tokens_trained if parent and init_lora is not None else 0),
        steps=result.step,
        parent=parent.id if parent and init_lora is not None else None,
        config={
            "rank": cfg.rank,
            "alpha": cfg.alpha,
            "target_modules": list(cfg.target_modules),
            "layer_fraction": cfg.layer_fraction,
        },
        drift=report.drift,
        general_base_ppl=general_base.answer_ppl,
        general_adapter_ppl=general_adapter.answer_ppl,
        reference_base_p=general_base.reference_p,
        reference_adapter_p=general_adapter.reference_p,
        seconds=round(report.seconds, 1),
        heldout_tokens=data.heldout_tokens,
        near_duplicates=data.near_duplicates,
        refused=refused,
        samples=report.samples,
    )
    reg.add(gguf, result.lora_state, record)
    if refused is None:
        reg.set_active(record.id)
        report.state = "activated"
    else:
        report.state = "refused" if drifted else "kept"
    reg.drop_checkpoint()
    report.adapter_id = record.id
    return report


@contextlib.contextmanager
def adapter_active(llama: Any, gguf: bytes, base_sha256: str) -> Iterator[None]:
    """`gguf` active on `llama` for the block; the base again afterwards."""
    handle = runtime.load_adapter(llama, gguf, base_sha256)
    runtime.activate(llama, handle)
    try:
        yield
    finally:
        runtime.activate(llama, None)
        runtime.free(llama, handle)


def _sample_prompts(heldout: list[list[int]]) -> list[tuple[list[int], list[int]]]:
    """Up to SAMPLES (start, true continuation) pairs from held-out windows spread over the held-out text.

    Windows shorter than a full sample (a small seq_len) are split in the same 3:2 proportion instead.
    """
    need = min(SAMPLE_PROMPT_TOKENS + SAMPLE_TOKENS, max((len(w) for w in heldout), default=0))
    if need < 8:
        return []
    cut = need * SAMPLE_PROMPT_TOKENS // (SAMPLE_PROMPT_TOKENS + SAMPLE_TOKENS)
    usable = [w for w in heldout if len(w) >= need]
    picks = sorted({round(i * (len(usable) - 1) / max(SAMPLES - 1, 1)) for i in range(SAMPLES)})
    return [(usable[i][:cut], usable[i][cut:need]) for i in picks]


def _text(tokenizer: Any, ids: list[int]) -> str:
    return str(tokenizer.decode(ids, skip_special_tokens=True))


def open_llama(path: Path, n_ctx: int = 512, threads: int = 0) -> Any:
    """A private llama.cpp instance for evaluation (batch = context, so one window is one decode).

    Prompt processing gets the same thread count as generation (llama-cpp-python's default is every logical
    CPU): ggml's threads spin at barriers, and with more threads than free cores one preempted thread stalls
    the rest. Measured on a 2-core machine loaded by other processes: 8 generated tokens took 29 s with two
    threads and 1 s with one.
    """
    import llama_cpp

    from storage.machine import physical_cores

    threads = threads or physical_cores()
    with runtime.quiet_llama_log():
        return llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )


def _now() -> str:
    from storage.timeutil import now

    return now()
