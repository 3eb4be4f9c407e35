"""The default prompt framing (system message) of each model, chosen by measurement, not by taste.

Small models are sensitive to the system message, and a framing that looks right on one CPU can be a coin
flip on another (see `prompt_probe`). `bench/probe.py` scores candidate framings on llama.cpp and on the
torch-dequantized reference and records, per GGUF sha256, the framing whose worst probe margin is best, in
`data/framings.json`. Models without a measurement get no system message: their chat template's own
default, which is what their authors tuned for.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

FRAMINGS_FILE = Path(__file__).with_name("data") / "framings.json"
# A probe is "reliably answered" when its margin is at least this on every numeric path measured: tests
# assert correct answers only for those (a smaller margin is a coin flip on some CPU).
RELIABLE_MARGIN = 0.2
# The temperature of models without a measurement: llama.cpp's and most chat front ends' usual default.
DEFAULT_TEMPERATURE = 0.7


@functools.cache
def recorded() -> dict[str, dict[str, Any]]:
    """sha256 -> {"file", "framing", "system_prompt", "measured"} for every measured model."""
    framings: dict[str, dict[str, Any]] = json.loads(FRAMINGS_FILE.read_text("utf-8"))
    return framings


def default_system_prompt(sha256: str) -> str | None:
    """The system message to use when the user set none; None means no system message."""
    entry = recorded().get(sha256)
    return entry["system_prompt"] if entry else None


def default_temperature(sha256: str) -> float:
    """The sampling temperature of a request that sets none: the one measured for this GGUF (bench/probe.py
    picks the highest at which the reliable probes still come out word for word), else DEFAULT_TEMPERATURE."""
    entry = recorded().get(sha256)
    return float(entry.get("temperature", DEFAULT_TEMPERATURE)) if entry else DEFAULT_TEMPERATURE


def reliable_probes(sha256: str) -> list[str]:
    """The probe questions the recorded framing answers with a margin of RELIABLE_MARGIN on every path."""
    entry = recorded().get(sha256)
    if not entry:
        return []
    by_path = entry["measured"][entry["framing"]]
    questions = next(iter(by_path.values()))
    return [q for q in questions if all(margins[q] >= RELIABLE_MARGIN for margins in by_path.values())]
