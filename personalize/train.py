"""The LoRA training loop, in nanoGPT's shape: one config, one pure schedule, one loop you read in one sitting.

A checkpoint holds everything needed to continue (adapter weights, optimizer, step, schedule, data order
seed), so resuming after `kill -9`, pausing, and continuing from the current adapter on new data are the same
code. Checkpoints leave as bytes through `save_checkpoint`: the caller encrypts them (the store's blobs), this
module never writes user-derived data to disk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from personalize import architectures, memory
from personalize.dataset import Dataset
from storage.cpu import native_bf16
from storage.errors import KnownError

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class TrainConfig:
    rank: int = 16  # LoRA rank: 16 learns a writing style on 135M params; 4-8 underfits in our runs
    alpha: float = 32.0  # LoRA alpha; scale = alpha / rank = 2, so lr need not change with rank
    dropout: float = 0.0  # LoRA dropout: costs time, and one-user data is rarely trained for many epochs
    target_modules: tuple[str, ...] = ()  # (): every linear layer of the architecture; attention-only learns less
    # Share of decoder layers, counted from the top, that get a LoRA. Backward stops at the lowest adapted layer
    # (nothing below it needs a gradient), so a step costs ~forward + this share of backward (bench/train.py).
    layer_fraction: float = 1.0
    seq_len: int = 512  # tokens per packed block: longer blocks amortise per-call overhead on CPU
    batch_size: int = 1  # blocks per optimizer step: 512 tokens, 4x the updates per minute of 2048 at the same tok/s
    micro_batch: int = 0  # blocks per forward/backward; 0: <= 512 tokens, fewer if RAM is short (memory.py)
    checkpointing: str = "auto"  # gradient checkpointing: "auto" only when one block per micro-batch won't fit
    lr: float = 2e-3  # peak learning rate; with 512-token steps 2e-3 gained more than 1e-3 (bench/train.py)
    min_lr: float = 2e-4  # cosine floor
    warmup_steps: int = 3  # linear warmup (LoRA B starts at 0); then the schedule is sized to the budget
    weight_decay: float = 0.0  # LoRA weights start at zero; decay only fights learning here
    grad_clip: float = 1.0  # clip the global grad norm; a spike on one odd block should not derail a run
    epochs: float = 2.0  # passes over the training blocks when the time budget does not end the run first
    max_steps: int = 0  # 0: derived from epochs and, after warmup, from the time budget
    max_minutes: float = 0.0  # wall-clock budget for the optimisation loop; 0 means no budget
    checkpoint_every_s: float = 60.0  # an encrypted checkpoint costs ~0.2 s; a minute of work is all we lose
    eval_every: int = 0  # torch held-out eval every N steps (0: only at the end; llama.cpp does the real eval)
    bf16: str = "auto"  # "auto": bf16 where the CPU has native bf16 (AMX/AVX512-BF16), else fp32; see storage.cpu
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
    tokens_per_s: float = 0.0  # measured training speed (what `hearth models list` estimates run time from)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to min_lr at cfg.max_steps. Pure: resume recomputes it exactly."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.max_steps <= cfg.warmup_steps:
        return cfg.lr
    ratio = min(1.0, (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def use_bf16(cfg: TrainConfig) -> bool:
    """A bf16 base pays only with native bf16 matmuls; emulated it is slower than fp32."""
    if cfg.bf16 in ("on", "true", "1"):
        return True
    if cfg.bf16 != "auto":
        return False
    return native_bf16()


def base_dtype(cfg: TrainConfig) -> Any:
    """The frozen base's dtype: bf16 halves its memory where the CPU computes in bf16 natively, else fp32."""
    import torch

    return torch.bfloat16 if use_bf16(cfg) else torch.float32


def memory_plan(shape: memory.Shape, cfg: TrainConfig, lora_state: Mapping[str, Any] | None = None) -> memory.Plan:
    """Micro-batch and checkpointing for this run: the config's when set, else sized to the free RAM now.

    KnownError with the numbers when even gradient checkpointing would not fit (memory.plan).
    """
    bf16 = use_bf16(cfg)
    layers = len(adapted_layers(shape.n_layer, cfg, lora_state))
    if cfg.micro_batch > 0:
        micro = min(cfg.micro_batch, cfg.batch_size)
        ckpt = cfg.checkpointing in ("on", "true", "1")
        peak = memory.peak_bytes(shape, cfg.rank, cfg.seq_len, micro, bf16, ckpt, layers)
        return memory.Plan(micro, -(-cfg.batch_size // micro), ckpt, peak, memory.available_bytes())
    found = memory.plan(shape, cfg.rank, cfg.seq_len, cfg.batch_size, bf16, layers=layers)
    if cfg.checkpointing in ("off", "false", "0") and found.checkpointing:
        raise KnownError(
            f"Training needs about {found.peak_bytes / memory.GIB:.1f} GiB without gradient checkpointing; "
            f"{found.available_bytes / memory.GIB:.1f} GiB is free."
        )
    return found


def set_threads(cfg: TrainConfig) -> int:
    import torch

    from storage.machine import physical_cores

    threads = cfg.threads or physical_cores()
    torch.set_num_threads(threads)
    return threads


_LAYER_KEY = re.compile(r"\.layers\.(\d+)\.")  # a decoder layer's index in a module or state-dict key


def adapted_layers(n_layer: int, cfg: TrainConfig, lora_state: Mapping[str, Any] | None = None) -> list[int]:
    """The decoder layers that get a LoRA: the top `cfg.layer_fraction` of them (at least one), and every layer
    `lora_state` already adapts, so continuing an adapter never drops what its lower layers learnt."""
    if not 0 < cfg.layer_fraction <= 1:
        raise ValueError(f"layer_fraction must be in (0, 1], not {cfg.layer_fraction}")
    count = max(1, round(n_layer * cfg.layer_fraction))
    layers = set(range(n_layer - count, n_layer))
    layers.update(int(m.group(1)) for key in lora_state or {} if (m := _LAYER_KEY.search(key)))
    return sorted(layers)


def wrap_lora(model: PreTrainedModel, cfg: TrainConfig, lora_state: dict[str, Any] | None = None) -> Any:
    """The base wrapped in a peft LoRA; `lora_state` continues an existing adapter instead of starting over."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules or architectures.for_model(model).targets),
        layers_to_transform=adapted_layers(model.config.num_hidden_layers, cfg, lora_state),
        layers_pattern="layers",  # every supported architecture keeps its decoder layers in model.layers
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    if lora_state:
        set_peft_model_state_dict(peft_model, lora_state)
    return peft_model


class LoraWeights:
    """The adapter's weights, computed in the base's dtype and updated in fp32.

    peft keeps LoRA weights in fp32 on a bf16 base, so every LoRA call casts its input to fp32 and its sum
    back (0.61x the tokens per CPU-s of this class), and autocast, the old way to get bf16 matmuls, re-cast
    inputs and weights on every call (casts 0.30 vs 0.14 CPU-s per 512-token step; `bench/train.py
    --profile`, near idle). On the bf16 path the weights the forward sees are bf16 copies, so
    the whole forward and backward run in bf16 without a cast; gradients are added into fp32 master weights
    after each micro-batch, and the optimizer (clipping, Adam moments, updates of 1e-4 relative size that
    bf16 would round away) works on the masters only. On the fp32 path the masters are the weights.
    """

    def __init__(self, peft_model: Any, bf16: bool) -> None:
        import torch

        self.params = [p for p in peft_model.parameters() if p.requires_grad]
        self.bf16 = bf16
        if not bf16:
            self.masters = self.params
            return
        self.masters = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        for param in self.params:
            param.data = param.data.to(torch.bfloat16)

    def accumulate_grads(self) -> None:
        """Move this micro-batch's bf16 gradients into the fp32 masters (accumulating in bf16 would round)."""
        if not self.bf16:
            return
        for param, master in zip(self.params, self.masters, strict=True):
            if param.grad is None:
                continue
            if master.grad is None:
                master.grad = param.grad.float()
            else:
                master.grad += param.grad
            param.grad = None

    def copy_from_masters(self) -> None:
        if not self.bf16:
            return
        import torch

        with torch.no_grad():
            for param, master in zip(self.params, self.masters, strict=True):
                param.copy_(master)

    @contextlib.contextmanager
    def fp32(self) -> Iterator[None]:
        """The model holds the fp32 masters for the block (a checkpoint saves what the optimizer has)."""
        compute = [p.data for p in self.params]
        for param, master in zip(self.params, self.masters, strict=True):
            param.data = master.data
        try:
            yield
        finally:
            for param, data in zip(self.params, compute, strict=True):
                param.data = data

    def keep_fp32(self) -> None:
        for param, master in zip(self.params, self.masters, strict=True):
            param.data = master.data


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
        for name in ("max_minutes", "threads", "checkpoint_every_s", "eval_every", "micro_batch", "checkpointing"):
            merged[name] = getattr(cfg, name)
        if cfg.max_steps > 0:
            merged["max_steps"] = cfg.max_steps
        cfg = TrainConfig(**merged)
        cfg.target_modules = tuple(cfg.target_modules)
    if not cfg.target_modules:
        cfg.target_modules = architectures.for_model(model).targets
    torch.manual_seed(cfg.seed)
    lora_state = state["lora"] if state else init_lora
    peft_model = wrap_lora(model, cfg, lora_state)
    lora = LoraWeights(peft_model, model.dtype == torch.bfloat16)  # a bf16 base computes its LoRA in bf16 too
    optimizer = torch.optim.AdamW(lora.masters, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=False)
    step, tokens_seen = 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen = state["step"], state["tokens_seen"]
    steps_in_data = max(1, int(len(data.blocks) * cfg.epochs / cfg.batch_size))
    if cfg.max_steps <= 0:
        cfg.max_steps = steps_in_data
    plan = memory_plan(memory.Shape.from_model(model), cfg, lora_state)
    if plan.checkpointing:
        # Non-reentrant checkpointing needs no input that requires grad (the embeddings are frozen).
        peft_model.get_base_model().gradient_checkpointing_enable({"use_reentrant": False})
    peft_model.train()

    def make_checkpoint() -> bytes:
        with lora.fp32():
            return dump_checkpoint(peft_model, optimizer, cfg, step, tokens_seen, data.fingerprint, base_sha256)

    started = time.monotonic()
    last_saved = started
    first_step, timed_from, timed_tokens = step, started, 0
    loss_value, rate = float("nan"), 0.0
    stopped = False
    while step < cfg.max_steps:
        if should_stop():
            stopped = True
            break
        step_s = cfg.batch_size * cfg.seq_len / rate if rate else 0.0
        if cfg.max_minutes and time.monotonic() - started + step_s > cfg.max_minutes * 60:
            break  # a step that would end past the budget is not started: the budget is the user's
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = torch.tensor(batch_at(step, data, cfg), dtype=torch.long)
        loss_sum = 0.0
        for micro in batch.split(plan.micro_batch):
            nll, count = chunked_nll(peft_model, micro)
            (nll / (count * plan.accumulation)).backward()  # the mean over the whole step's tokens
            lora.accumulate_grads()
            loss_sum += float(nll.detach()) / count / plan.accumulation
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(lora.masters, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        lora.copy_from_masters()
        step += 1
        tokens_seen += batch.numel()
        loss_value = loss_sum
        now = time.monotonic()
        if step == first_step + 1:  # the first step pays one-off allocation costs: time from its end
            timed_from = now
        else:
            timed_tokens += batch.numel()
        rate = timed_tokens / max(now - timed_from, 1e-9) if timed_tokens else batch.numel() / (now - started)
        total = cfg.max_steps
        if cfg.max_minutes and state is None and step <= cfg.warmup_steps:
            # What fits in the budget at the speed so far: shown while lr warms up (not the data's step count,
            # which "step 2/400" then "step 3/45" would make), then fixed as the cosine schedule's length.
            left_s = cfg.max_minutes * 60 - (now - started)
            total = max(step + 1, min(cfg.max_steps, step + int(left_s * rate / (cfg.batch_size * cfg.seq_len))))
            if step == cfg.warmup_steps:
                cfg.max_steps = total
        eta = (total - step) * cfg.batch_size * cfg.seq_len / rate
        if cfg.max_minutes:
            eta = min(eta, max(0.0, cfg.max_minutes * 60 - (now - started)))
        progress(Progress(step, total, loss_value, rate, eta, tokens_seen))
        if cfg.eval_every and step % cfg.eval_every == 0:
            peft_model.eval()
            progress(Progress(step, total, evaluate(peft_model, data.heldout), rate, eta, tokens_seen, "eval"))
            peft_model.train()
        if now - last_saved >= cfg.checkpoint_every_s:
            save_checkpoint(make_checkpoint())
            last_saved = time.monotonic()
    save_checkpoint(make_checkpoint())
    lora.keep_fp32()  # evaluation and export read the fp32 weights the optimizer trained
    peft_model.eval()
    # The torch side of the export check: llama.cpp must reproduce this number with the exported adapter.
    heldout_ppl = evaluate(peft_model, data.heldout) if data.heldout and not stopped else None
    rate = rate if timed_tokens else 0.0  # the loop's measured speed, before the final checkpoint and eval
    return Result(step, cfg.max_steps, tokens_seen, loss_value, stopped, lora_state_dict(peft_model), heldout_ppl, rate)


def evaluate(model: Any, windows: list[list[int]]) -> float:
    """Held-out perplexity in torch: exp of the mean next-token loss over all predicted tokens."""
    import torch

    total_nll, count = 0.0, 0
    with torch.no_grad():
        for ids in windows:
            if len(ids) < 2:
                continue
            nll, n = chunked_nll(model, torch.tensor([ids], dtype=torch.long))
            total_nll += float(nll)
            count += n
    return math.exp(total_nll / max(count, 1))


def chunked_nll(model: Any, input_ids: Any) -> tuple[Any, int]:
    """Summed next-token NLL of a batch and the number of predicted tokens, never holding full logits.

    The decoder runs as usual; the output head and cross-entropy go through `_head_nll_function` a few
    hundred rows at a time, which also computes each chunk's gradient on the spot, so backward neither keeps
    nor recomputes logits. Memory for the head drops from tokens x vocab to one chunk x vocab.
    """
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = lm.model(input_ids=input_ids).last_hidden_state[:, :-1]
    hidden = hidden.reshape(-1, hidden.shape[-1])
    targets = input_ids[:, 1:].reshape(-1)
    head = lm.get_output_embeddings()
    if getattr(head, "bias", None) is not None or (head.weight.requires_grad and torch.is_grad_enabled()):
        raise ValueError("chunked_nll expects a frozen, bias-free output head (LoRA never targets it)")
    rows = max(16, memory.LOGIT_CHUNK_BYTES // (4 * head.weight.shape[0]))
    softcap = getattr(lm.config, "final_logit_softcapping", None) or 0.0
    return _head_nll_function().apply(hidden, head.weight, targets, rows, float(softcap)), int(targets.numel())


def _head_nll_chunks(hidden: Any, weight: Any, targets: Any, rows: int, softcap: float, grad: Any) -> Any:
    import torch

    total = torch.zeros((), dtype=torch.float32)
    weight = weight.to(hidden.dtype)  # once, not per chunk: a 262k-row head is hundreds of MB
    for start in range(0, hidden.shape[0], rows):
        h, tgt = hidden[start : start + rows], targets[start : start + rows]
        logits = (h @ weight.T).float()
        if softcap:
            capped = torch.tanh(logits / softcap)
            logits = capped * softcap
        log_z = torch.logsumexp(logits, dim=-1)
        total = total + (log_z - logits.gather(1, tgt[:, None])[:, 0]).sum()
        if grad is not None:  # d(sum nll)/d(logits) = softmax - onehot; chain through the cap and the head
            probs = torch.exp(logits - log_z[:, None])
            probs[torch.arange(len(tgt)), tgt] -= 1.0
            if softcap:
                probs *= 1.0 - capped * capped
            grad[start : start + rows] = (probs.to(h.dtype) @ weight).to(grad.dtype)
    return total


@functools.cache
def _head_nll_function() -> Any:
    """The autograd Function, built on first use so importing this module does not import torch."""
    import torch

    class ChunkedHeadNLL(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, targets: Any, rows: int, softcap: float) -> Any:
            grad = torch.empty_like(hidden) if hidden.requires_grad else None
            total = _head_nll_chunks(hidden.detach(), weight, targets, rows, softcap, grad)
            ctx.save_for_backward(*(() if grad is None else (grad,)))
            return total

        @staticmethod
        def backward(ctx: Any, upstream: Any) -> Any:
            (grad,) = ctx.saved_tensors
            return grad * upstream.to(grad.dtype), None, None, None, None

    return ChunkedHeadNLL


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
