"""How much memory a personalization run will need, decided before it starts, so it refuses instead of swapping.

Peak RSS while training is about: the runtime (Python, torch, transformers), the frozen base weights (16-bit
where the CPU has native bf16), the LoRA's weights with their gradients and Adam moments, the activations
autograd keeps for backward, and one chunk of logits (train.chunked_nll never holds the full
sequence x vocabulary logits: 0.5 GB per 512-token sequence for Gemma 3's 262k vocabulary in fp32).

Activations are the part that scales with the batch, so the batch is what gives way: the optimizer step
keeps its `batch_size` blocks (the schedule and resume do not change), but they go through in micro-batches
of at most `MICRO_BATCH_TOKENS` tokens, fewer where free RAM is short, with gradients accumulated.
Activations grow linearly with the rows (SmolLM2-135M: one 4 x 512 forward peaked at 4.05 GiB RSS, 2 x 512
at 2.59, 1 x 512 at 1.70) and the speed does not pay for it: on a near-idle machine (load ~1.9, bf16) 1 x 512
per forward ran 205 tokens per CPU-second and 2 x 512 190 (`bench/train.py --profile`; an earlier 0.7x for
1 x 512 was measured at load 9-14 and did not hold up). Gradient
checkpointing (recomputing each layer's forward in backward, ~1/3 more compute) is switched on only when
even one block per micro-batch would not fit. The per-token activation cost is a fit to measured peaks,
not a bound: the refusal leaves a margin.

With a LoRA on the top layers only (`TrainConfig.layer_fraction`), the layers below the lowest adapted one
need no gradient: autograd keeps nothing of theirs, so activations and the adapter scale with the adapted
layers, not all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.errors import KnownError

GIB = 2**30
RUNTIME_BYTES = int(0.45 * GIB)  # python + torch + transformers + peft + tokenizer: 0.37 GiB after import, + pools
LOGIT_CHUNK_BYTES = 64 * 2**20  # one chunk of fp32 logits in chunked cross-entropy
MICRO_BATCH_TOKENS = 512  # tokens per forward/backward: 135M peaks under 2 GiB, as fast per token as 1024
USABLE_FRACTION = 0.85  # of the memory the OS reports available: the chat and the desktop keep the rest


@dataclass(frozen=True)
class Shape:
    """What the estimate needs to know about a model (from GGUF metadata or a loaded config)."""

    n_params: int
    hidden: int
    intermediate: int
    n_layer: int
    vocab: int
    attn_width: int  # n_head * head_dim
    kv_width: int  # n_head_kv * head_dim

    @classmethod
    def from_base(cls, info: Any) -> Shape:
        """From a base.BaseInfo: its scalar GGUF metadata and tensor sizes."""
        fields, arch = info.fields, info.architecture
        hidden = int(fields[f"{arch}.embedding_length"])
        n_head = int(fields[f"{arch}.attention.head_count"])
        head_dim = int(fields.get(f"{arch}.attention.key_length") or hidden // n_head)
        n_kv = int(fields.get(f"{arch}.attention.head_count_kv") or n_head)
        return cls(
            n_params=info.n_params,
            hidden=hidden,
            intermediate=int(fields[f"{arch}.feed_forward_length"]),
            n_layer=int(fields[f"{arch}.block_count"]),
            vocab=info.vocab,
            attn_width=n_head * head_dim,
            kv_width=n_kv * head_dim,
        )

    @classmethod
    def from_model(cls, model: Any) -> Shape:
        """From a loaded transformers model (its config and parameter count)."""
        config = model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(
            n_params=sum(p.numel() for p in model.parameters()),
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            n_layer=config.num_hidden_layers,
            vocab=config.vocab_size,
            attn_width=config.num_attention_heads * head_dim,
            kv_width=getattr(config, "num_key_value_heads", config.num_attention_heads) * head_dim,
        )


@dataclass(frozen=True)
class Plan:
    micro_batch: int  # blocks per forward/backward
    accumulation: int  # micro-batches per optimizer step (micro_batch x accumulation = batch_size)
    checkpointing: bool
    peak_bytes: int  # the estimate
    available_bytes: int  # what the OS reported free when planning


def lora_params(shape: Shape, rank: int, layers: int | None = None) -> int:
    """Adapter size with every linear layer of `layers` decoder layers (None: all) targeted: rank x (n_in + n_out)
    per matrix."""
    h, f = shape.hidden, shape.intermediate
    per_layer = (h + shape.attn_width) * 2 + (h + shape.kv_width) * 2 + (h + f) * 3
    return rank * per_layer * (shape.n_layer if layers is None else layers)


def activation_bytes_per_token_layer(shape: Shape, bf16: bool) -> int:
    """What autograd keeps per token and layer, in bytes per hidden and per ffn unit.

    Fitted to peak RSS at 1 x 512 tokens under bf16 on two shapes (SmolLM2-135M: hidden 576, ffn 1536, 1.70
    GiB; Qwen2.5-1.5B's: 1536 and 8960, 7.16 GiB): 27 and 24 bytes, i.e. the norms' fp32 copies, q/k/v
    before and after RoPE, and gate, up, SiLU and product per ffn unit. Fitted under autocast; the
    autocast-free step (bf16 LoRA copies, train.LoraWeights) still lands within the 15% of
    tests/integration/test_train_memory.py on both paths. fp32 (CPUs without native bf16): 53
    and 48, the middle of SmolLM2's measured fp32 peaks at 1 x 512 tokens, which fall in two groups from run
    to run (2.42-2.43 and 2.90-2.93 GiB, VmHWM; allocator reuse, not yet pinned down): 2.70 GiB estimated.
    """
    per_hidden, per_ffn = (27, 24) if bf16 else (53, 48)
    return per_hidden * shape.hidden + per_ffn * shape.intermediate


def peak_bytes(
    shape: Shape,
    rank: int,
    seq_len: int,
    micro_batch: int,
    bf16: bool,
    checkpointing: bool,
    layers: int | None = None,
) -> int:
    """The estimate for a LoRA on `layers` decoder layers (None: all); below them autograd keeps nothing."""
    adapted = shape.n_layer if layers is None else layers
    weights = shape.n_params * (2 if bf16 else 4)
    adapter = lora_params(shape, rank, adapted) * 16  # fp32 weight, gradient, two Adam moments
    per_layer = activation_bytes_per_token_layer(shape, bf16) * seq_len * micro_batch
    if checkpointing:  # each layer's input is kept; one layer's activations live during its recompute
        activations = shape.hidden * (2 if bf16 else 4) * seq_len * micro_batch * adapted + per_layer
    else:
        activations = per_layer * adapted
    logits = 3 * LOGIT_CHUNK_BYTES  # logits, softmax and its gradient for one chunk
    return RUNTIME_BYTES + weights + adapter + activations + logits


def peak_rss_bytes() -> int:
    """This process's peak resident memory: Linux's VmHWM, not `ru_maxrss`, which Linux carries over execve,
    so a child started by a big process (pytest, a bench driver) would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB elsewhere than macOS


def available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def plan(
    shape: Shape,
    rank: int,
    seq_len: int,
    batch_size: int,
    bf16: bool,
    available: int | None = None,
    layers: int | None = None,
) -> Plan:
    """The largest micro-batch up to MICRO_BATCH_TOKENS that fits (checkpointing only if nothing fits without),
    for a LoRA on `layers` decoder layers (None: all).

    KnownError, with the numbers, if not even one block fits with checkpointing.
    """
    available = available_bytes() if available is None else available
    budget = int(available * USABLE_FRACTION)
    largest = max(1, min(batch_size, MICRO_BATCH_TOKENS // seq_len))
    for checkpointing in (False, True):
        for micro in range(largest, 0, -1):
            if batch_size % micro:
                continue  # equal micro-batches keep the loss an exact mean over the step's blocks
            peak = peak_bytes(shape, rank, seq_len, micro, bf16, checkpointing, layers)
            if peak <= budget:
                return Plan(micro, batch_size // micro, checkpointing, peak, available)
    needed = peak_bytes(shape, rank, seq_len, 1, bf16, True, layers)
    raise KnownError(
        f"Personalizing this model needs about {needed / GIB:.1f} GiB of memory and only "
        f"{available / GIB:.1f} GiB is free; close other programs or personalize a smaller model."
    )
