"""`hearth models list`'s personalization column: supported or why not, memory, and time at the measured speed."""

from __future__ import annotations

from pathlib import Path

from personalize import base, estimate

TINY = Path(__file__).parents[2] / "fixtures" / "tiny"


def test_supported_model_gets_memory_then_time_once_a_speed_was_measured() -> None:
    qwen, gemma = TINY / "qwen2.gguf", TINY / "gemma3.gguf"
    assert estimate.describe(qwen, data_tokens=60_000).startswith("yes, ~")
    assert "min" not in estimate.describe(qwen, data_tokens=60_000)  # nothing measured yet: no made-up time

    estimate.record_rate(base.inspect(qwen), tokens_per_s=1000.0)
    assert estimate.describe(qwen, data_tokens=60_000).endswith(", 2 min over your data")  # 2 epochs x 60k / 1k/s
    borrowed = estimate.describe(gemma, data_tokens=60_000)  # scaled from qwen2's speed by parameter count
    assert "roughly" in borrowed and borrowed.endswith("min over your data")


def test_unsupported_architecture_says_why(tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "mamba.gguf"
    writer = GGUFWriter(str(path), arch="mamba")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert estimate.describe(path) == (
        "no: Personalization does not support the 'mamba' model architecture yet "
        "(supported: gemma3, llama, phi3, qwen2, qwen3)."
    )
