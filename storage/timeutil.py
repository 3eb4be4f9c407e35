"""One timestamp format for every table: ISO 8601 UTC, which sorts as text.

Microseconds, so rows written in quick succession (a message, then its reply) still order correctly.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
