"""The Qt binding itself: a void call must not eat a reference to None.

PySide6 6.12.0 on Python 3.11 returned None from void methods without a reference, one per call: the
window aborted with "Fatal Python error: none_dealloc" once a long chat had made enough calls (found by
bench/ui.py). pyproject.toml keeps PySide6 below 6.12; this test fails if a release with the bug returns.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 (PEP 683): no count")
def test_void_calls_keep_none_alive(qtbot: Any) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    font = QFont(label.font())
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
        font.setBold(True)
    assert sys.getrefcount(None) - before > -100  # noise from the interpreter is a few, the bug was -4000
