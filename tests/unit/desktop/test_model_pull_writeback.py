"""The downloader starts writeback of each finished window through libc's sync_file_range (ctypes, not
wrapped by the os module): a wrong binding would silently do nothing and bring back the long final fsync."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from desktop.engine import model_pull


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_of_a_written_range_is_accepted_by_the_kernel(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "part", os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"x" * (1 << 20))
        assert model_pull._start_writeback(fd, 0, 1 << 20) == 0
        assert model_pull._start_writeback(fd, 1 << 19, 1 << 19) == 0  # 64-bit offsets passed as such
        assert model_pull._start_writeback(-1, 0, 1) == -1  # a bad descriptor fails without raising
    finally:
        os.close(fd)
