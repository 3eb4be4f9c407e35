"""The Store's passphrase source for the window: asked on the store executor, answered by a dialog."""

from __future__ import annotations

import queue
import threading

from PySide6.QtCore import QObject, Signal

from storage.errors import KnownError


class PassphraseBridge(QObject):
    """`__call__` runs on the store executor (inside `Store.open`), asks the GUI thread through
    `passphrase_will_ask`, and waits for `answer()`. Cancelling raises a KnownError, so the store stays
    locked and the window says why.
    """

    passphrase_will_ask = Signal(bool)  # first_run: choose a new passphrase instead of entering one

    def __init__(self) -> None:
        super().__init__()
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._closed = threading.Event()

    def __call__(self, first_run: bool) -> str:
        self.passphrase_will_ask.emit(first_run)
        while not self._closed.is_set():
            try:
                answer = self._answers.get(timeout=0.2)
            except queue.Empty:
                continue
            if answer is None:
                break
            return answer
        raise KnownError("unlocking was cancelled; your data stays locked")

    def answer(self, passphrase: str | None) -> None:
        self._answers.put(passphrase)

    def close(self) -> None:
        self._closed.set()
