"""One timestamp format for every table: ISO 8601 UTC with milliseconds, which sorts as text."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
