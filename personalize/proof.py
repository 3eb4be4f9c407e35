"""What each adapter version did, as the user is shown it: gain, drift, tokens, time and before/after samples.

One place turns an `AdapterRecord` into the plain values that `hearth personalize status --json` prints and
the Personalize view displays, so the two never disagree. The samples are the user's own held-out text, so
this is read from the encrypted store on demand and never written to the status file.
"""

from __future__ import annotations

from typing import Any

from personalize.drift import DRIFT_LIMIT
from personalize.registry import AdapterRecord

# A held-out gain this large after a short run usually means the held-out text was seen in training (copied
# documents the near-duplicate check could not pair, or boilerplate repeated across sources): say so.
SUSPICIOUS_GAIN = 0.8


def version(record: AdapterRecord) -> dict[str, Any]:
    """One version's proof as JSON-ready values (None where an older version did not measure it)."""
    return {
        "id": record.id,
        "active": record.active,
        "created": record.created,
        "gain": round(record.improvement, 4),
        "heldout_ppl_base": record.base_ppl,
        "heldout_ppl_adapter": record.adapter_ppl,
        "heldout_tokens": record.heldout_tokens,
        "drift": record.drift,
        "drift_limit": DRIFT_LIMIT,
        "general_ppl_base": record.general_base_ppl,
        "general_ppl_adapter": record.general_adapter_ppl,
        "reference_p_base": record.reference_base_p,
        "reference_p_adapter": record.reference_adapter_p,
        "tokens_trained": record.tokens_trained,
        "steps": record.steps,
        "seconds": record.seconds,
        "near_duplicates": record.near_duplicates,
        "refused": record.refused,
        "warnings": warnings(record),
        "samples": list(record.samples),
    }


def warnings(record: AdapterRecord) -> list[str]:
    out = []
    if record.improvement >= SUSPICIOUS_GAIN:
        out.append(
            f"A {100 * record.improvement:.0f}% gain is suspiciously large: the held-out text may repeat text "
            "it was trained on."
        )
    if record.drift is not None and record.drift > DRIFT_LIMIT:
        out.append(f"It drifted {record.drift:.2f}x on general answers (limit {DRIFT_LIMIT:.2f}x).")
    return out


def summary(record: AdapterRecord) -> str:
    """One line: gain on unseen text, drift on general text, tokens learned, time taken."""
    drift = f"drift {record.drift:.3f}x" if record.drift is not None else "drift not measured"
    took = f"{record.seconds / 60:.1f} min" if record.seconds is not None else "time not recorded"
    return (
        f"gain {100 * record.improvement:+.1f}% on unseen text (perplexity {record.base_ppl:.2f} -> "
        f"{record.adapter_ppl:.2f}), {drift} on general text, {record.tokens_trained:,} tokens learned, {took}"
    )
