"""Whether a model can be personalized on this machine, and roughly how long a run over the user's data takes.

The time is measured, not guessed: each run records its training speed (tokens/s, a property of the model
and the machine, no user data) in the cache, keyed by the model's hash. A model never trained here borrows the
measured speed of another, scaled by parameter count (a step's work is proportional to it).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from personalize import base, memory
from storage import paths
from storage.errors import KnownError

RATES_FILE = "train_rates.json"


def _rates() -> dict[str, dict[str, float]]:
    try:
        data = json.loads((paths.cache() / RATES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_rate(info: base.BaseInfo, tokens_per_s: float) -> None:
    """Remember how fast this model trained here (the last run wins: load and threads change)."""
    if tokens_per_s <= 0:
        return
    rates = _rates()
    rates[info.sha256] = {"tokens_per_s": round(tokens_per_s, 2), "n_params": info.n_params}
    target = paths.cache() / RATES_FILE
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(rates, handle)
    os.replace(tmp, target)


def tokens_per_s(info: base.BaseInfo) -> tuple[float, bool] | None:
    """(tokens/s, measured on this very model) or None when nothing was ever trained here."""
    rates = _rates()
    if info.sha256 in rates:
        return float(rates[info.sha256]["tokens_per_s"]), True
    others = [r for r in rates.values() if r.get("n_params")]
    if not others or not info.n_params:
        return None
    ref = max(others, key=lambda r: r["n_params"])  # the largest model measured scales most faithfully
    return float(ref["tokens_per_s"]) * ref["n_params"] / info.n_params, False


def describe(path: Path, data_tokens: int | None = None, epochs: float = 2.0) -> str:
    """One line for `hearth models list`: "yes, ~2.1 GiB, ~14 min over your data", or why not."""
    from personalize.train import TrainConfig, memory_plan

    try:
        info = base.inspect(path)
        plan = memory_plan(memory.Shape.from_base(info), TrainConfig())
    except KnownError as err:
        return f"no: {err}"
    line = f"yes, ~{plan.peak_bytes / memory.GIB:.1f} GiB"
    rate = tokens_per_s(info)
    if rate is not None and data_tokens:
        minutes = data_tokens * epochs / rate[0] / 60
        line += f", {'' if rate[1] else 'roughly '}{max(1, round(minutes))} min over your data"
    return line
