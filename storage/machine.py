"""Facts about this computer that every layer sizes its work by (the lowest layer, so all can import it)."""

from __future__ import annotations

import os


def physical_cores() -> int:
    """Decode and training speed peak at the number of physical cores; hyper-threads only add contention."""
    import psutil

    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)
