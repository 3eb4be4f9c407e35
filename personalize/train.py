"""The LoRA training loop, in nanoGPT's shape: one config, one pure schedule, one loop you read in one sitting.

A checkpoint holds everything needed to continue (adapter weights, optimizer, step, schedule, data order
seed), so resuming after `kill -9`, pausing, and continuing from the current adapter on new data are the same
code. Checkpoints leave as bytes through `save_checkpoint`: the caller encrypts them (the store's blobs), this
module never writes user-derived data to disk.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from personalize.dataset import Dataset

if TYPE_CHECKING:
    from transformers import PreTrainedModel

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    rank: int = 16  # LoRA rank: 16 learns a writing style on 135M params; 4-8 underfits in our runs
    alpha: float = 32.0  # LoRA alpha; scale = alpha / rank = 2, so lr need not change with rank
    dropout: float = 0.0  # LoRA dropout: costs time, and one-user data is rarely trained for many epochs
    target_modules: tuple[str, ...] = LLAMA_TARGETS  # all linear layers: attention-only learns far less
    seq_len: int = 512  # tokens per packed block: longer blocks amortise per-call overhead on CPU
    batch_size: int = 4  # blocks per optimizer step: 2048 tokens keeps CPU GEMMs efficient
    lr: float = 2e-3  # peak learning rate; LoRA on a small model tolerates a high rate
    min_lr: float = 2e-4  # cosine floor
    warmup_steps: int = 5  # linear warmup; also the steps timed to size the schedule to the budget
    weight_decay: float = 0.0  # LoRA weights start at zero; decay only fights learning here
    grad_clip: float = 1.0  # clip the global grad norm; a spike on one odd block should not derail a run
    epochs: float = 2.0  # passes over the training blocks when the time budget does not end the run first
    max_steps: int = 0  # 0: derived from epochs and, after warmup, from the time budget
    max_minutes: float = 0.0  # wall-clock budget for the optimisation loop; 0 means no budget
    checkpoint_every_s: float = 60.0  # an encrypted checkpoint costs ~0.2 s; a minute of work is all we lose
    eval_every: int = 0  # torch held-out eval every N steps (0: only at the end; llama.cpp does the real eval)
    bf16: str = "auto"  # "auto": bf16 autocast where the CPU has native bf16 (AMX/AVX512-BF16), else fp32
    threads: int = 0  # torch threads; 0: physical cores (hyperthreads slow GEMMs down)
    seed: int = 1337


@dataclass
class Progress:
    """One report from the loop: what a progress bar or the status file shows."""

    step: int
    max_steps: int
    loss: float
    tokens_per_s: float
    eta_s: float
    tokens_seen: int
    state: str = "training"


@dataclass
class Result:
    step: int
    max_steps: int
    tokens_seen: int
    final_loss: float
    stopped: bool  # True when should_stop ended the run early (pause/cancel), False when finished
    lora_state: dict[str, Any] = field(repr=False, default_factory=dict)
    heldout_ppl: float | None = None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to min_lr at cfg.max_steps. Pure: resume recomputes it exactly."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.max_steps <= cfg.warmup_steps:
        return cfg.lr
    ratio = min(1.0, (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def use_bf16(cfg: TrainConfig) -> bool:
    """bf16 autocast pays only with native bf16 matmuls; emulated it is slower than fp32."""
    if cfg.bf16 in ("on", "true", "1"):
        return True
    if cfg.bf16 != "auto":
        return False
    try:
        flags = open("/proc/cpuinfo").read()  # noqa: SIM115 - one read of a virtual file
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def set_threads(cfg: TrainConfig) -> int:
    import torch

    from storage.machine import physical_cores

    threads = cfg.threads or physical_cores()
    torch.set_num_threads(threads)
    return threads


def wrap_lora(model: PreTrainedModel, cfg: TrainConfig, lora_state: dict[str, Any] | None = None) -> Any:
    """The base wrapped in a peft LoRA; `lora_state` continues an existing adapter instead of starting over."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    if lora_state:
        set_peft_model_state_dict(peft_model, lora_state)
    return peft_model


def lora_state_dict(peft_model: Any) -> dict[str, Any]:
    """Only the adapter's tensors, detached to float32 (what export and checkpoints need)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().float().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def batch_at(step: int, data: Dataset, cfg: TrainConfig) -> list[list[int]]:
    """The blocks of one step: a per-epoch shuffle seeded by (seed, epoch), so resume replays the same order."""
    import random

    n = len(data.blocks)
    out = []
    for k in range(cfg.batch_size):
        position = step * cfg.batch_size + k
        epoch, index = divmod(position, n)
        order = list(range(n))
        random.Random(cfg.seed * 1000003 + epoch).shuffle(order)
        out.append(data.blocks[order[index]])
    return out


def train(
    model: PreTrainedModel,
    data: Dataset,
    cfg: TrainConfig,
    progress: Callable[[Progress], None] = lambda p: None,
    should_stop: Callable[[], bool] = lambda: False,
    save_checkpoint: Callable[[bytes], None] = lambda b: None,
    checkpoint: bytes | None = None,
    init_lora: dict[str, Any] | None = None,
    base_sha256: str = "",
) -> Result:
    """Train a LoRA on `data`; resume from `checkpoint` bytes if given, else start from `init_lora` if given."""
    import torch

    set_threads(cfg)
    state = load_checkpoint(checkpoint) if checkpoint else None
    if state is not None:
        # The checkpoint's schedule and LoRA shape win; budget, threads and checkpoint cadence are this run's,
        # and an explicit max_steps from the caller ends the resumed run early.
        merged = {**asdict(cfg), **state["config"]}
        for name in ("max_minutes", "threads", "checkpoint_every_s", "eval_every"):
            merged[name] = getattr(cfg, name)
        if cfg.max_steps > 0:
            merged["max_steps"] = cfg.max_steps
        cfg = TrainConfig(**merged)
        cfg.target_modules = tuple(cfg.target_modules)
    torch.manual_seed(cfg.seed)
    peft_model = wrap_lora(model, cfg, state["lora"] if state else init_lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=False)
    step, tokens_seen = 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen = state["step"], state["tokens_seen"]
    steps_in_data = max(1, int(len(data.blocks) * cfg.epochs / cfg.batch_size))
    if cfg.max_steps <= 0:
        cfg.max_steps = steps_in_data
    bf16 = use_bf16(cfg)
    peft_model.train()

    def make_checkpoint() -> bytes:
        return dump_checkpoint(peft_model, optimizer, cfg, step, tokens_seen, data.fingerprint, base_sha256)

    started = time.monotonic()
    last_saved = started
    first_step, timed_from, timed_tokens = step, started, 0
    loss_value = float("nan")
    stopped = False
    while step < cfg.max_steps:
        if should_stop():
            stopped = True
            break
        if cfg.max_minutes and time.monotonic() - started > cfg.max_minutes * 60:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = torch.tensor(batch_at(step, data, cfg), dtype=torch.long)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = peft_model(input_ids=batch, labels=batch).loss
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += batch.numel()
        loss_value = float(loss.detach())  # syncs nothing on CPU; cheap
        now = time.monotonic()
        if step == first_step + 1:  # the first step pays one-off allocation costs: time from its end
            timed_from = now
        else:
            timed_tokens += batch.numel()
        rate = timed_tokens / max(now - timed_from, 1e-9) if timed_tokens else batch.numel() / (now - started)
        if step == cfg.warmup_steps and cfg.max_minutes and state is None:
            # Size the cosine schedule to what fits in the budget, once, while lr is still warming up.
            left_s = cfg.max_minutes * 60 - (now - started)
            fit = step + int(left_s * rate / (cfg.batch_size * cfg.seq_len))
            cfg.max_steps = max(step + 1, min(cfg.max_steps, fit))
        eta = (cfg.max_steps - step) * cfg.batch_size * cfg.seq_len / rate
        if cfg.max_minutes:
            eta = min(eta, max(0.0, cfg.max_minutes * 60 - (now - started)))
        progress(Progress(step, cfg.max_steps, loss_value, rate, eta, tokens_seen))
        if cfg.eval_every and step % cfg.eval_every == 0:
            peft_model.eval()
            progress(Progress(step, cfg.max_steps, evaluate(peft_model, data.heldout), rate, eta, tokens_seen, "eval"))
            peft_model.train()
        if now - last_saved >= cfg.checkpoint_every_s:
            save_checkpoint(make_checkpoint())
            last_saved = time.monotonic()
    save_checkpoint(make_checkpoint())
    peft_model.eval()
    return Result(step, cfg.max_steps, tokens_seen, loss_value, stopped, lora_state_dict(peft_model))


def evaluate(model: Any, windows: list[list[int]]) -> float:
    """Held-out perplexity in torch (fp32): exp of the mean next-token loss over all predicted tokens."""
    import torch

    total_nll, count = 0.0, 0
    with torch.no_grad():
        for ids in windows:
            if len(ids) < 2:
                continue
            batch = torch.tensor([ids], dtype=torch.long)
            logits = model(input_ids=batch).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, batch[0, 1:], reduction="sum")
            total_nll += float(nll)
            count += len(ids) - 1
    return math.exp(total_nll / max(count, 1))


def dump_checkpoint(
    peft_model: Any,
    optimizer: Any,
    cfg: TrainConfig,
    step: int,
    tokens_seen: int,
    fingerprint: str,
    base_sha256: str = "",
) -> bytes:
    import torch

    state = {
        "version": 1,
        "config": {**asdict(cfg), "target_modules": list(cfg.target_modules)},
        "lora": lora_state_dict(peft_model),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "tokens_seen": tokens_seen,
        "data_fingerprint": fingerprint,
        "base_sha256": base_sha256,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_checkpoint(blob: bytes) -> dict[str, Any]:
    """Inverse of dump_checkpoint; weights_only so a tampered checkpoint cannot run code."""
    import torch

    from storage.errors import KnownError

    try:
        state = torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as err:
        raise KnownError("The training checkpoint is unreadable; start personalization over.") from err
    if not isinstance(state, dict) or state.get("version") != 1:
        raise KnownError("The training checkpoint is from an unknown version; start personalization over.")
    return state
