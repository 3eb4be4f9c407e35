"""Fit before load: the RAM estimate against what a real load costs, and the refusal with numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.engine.gguf_file import inspect
from desktop.engine.model_fit import check_fits, estimate_ram
from storage.errors import KnownError

ROOT = Path(__file__).parents[2]

MEASURE = """
import json, sys, psutil
from llama_cpp import Llama
proc = psutil.Process()
before = proc.memory_info().rss
llama = Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, verbose=False)
llama.create_completion("Tell me a long story about the sea. " * 80, max_tokens=4)  # a full 512-token batch
print(json.dumps(proc.memory_info().rss - before))
"""


@pytest.mark.parametrize("n_ctx", [1024, 4096])
def test_the_estimate_covers_a_real_load_without_crying_wolf(bundled_model: Path, n_ctx: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(bundled_model), str(n_ctx)], capture_output=True, text=True, check=True
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    estimate = estimate_ram(inspect(bundled_model), n_ctx)
    assert estimate.n_ctx == n_ctx
    assert measured <= estimate.total <= 1.8 * measured, (measured, estimate)


def test_a_model_that_does_not_fit_is_refused_with_numbers(bundled_model: Path) -> None:
    info = inspect(bundled_model)
    with pytest.raises(KnownError) as refused:
        check_fits(info, 4096, available=200_000_000)
    assert str(refused.value) == (
        f"{bundled_model.name} needs about 0.3 GB of memory at a 4096-token context, 0.2 GB free; "
        "close other programs or choose a smaller model (hearth models scan)"
    )
    assert check_fits(info, 4096, available=8_000_000_000).total == estimate_ram(info, 4096).total


def test_the_kv_cache_grows_with_the_context_and_stops_at_the_models_limit(bundled_model: Path) -> None:
    info = inspect(bundled_model)
    small, large, beyond = (estimate_ram(info, n) for n in (1024, 8192, 65536))
    # SmolLM2-135M: 30 layers x 3 KV heads x (64 + 64) dims x 2 bytes per token.
    assert large.kv_cache == 8 * small.kv_cache == 8192 * 30 * 3 * 128 * 2
    assert beyond.n_ctx == 8192 and beyond.total == large.total
