"""`hearth --self-test`: the real app, offscreen, asks the bundled model one question through the GUI.

Used by the GUI tests and the installer's smoke test. It runs against a temporary HEARTH_HOME (removed
afterwards) unless HEARTH_HOME is set; a temporary store gets a generated passphrase and no keychain entry.
Each stage has a deadline, so a hang becomes a non-zero exit with the stage named, never a stuck process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from desktop.services import Services
from storage.keys import env_passphrase

QUESTION = "In one short sentence, what is a hearth?"
DEADLINE_S = 180.0
MAX_TOKENS = 48


def run_self_test(services: Services, screenshot: str | None) -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    temp_home = None
    if not os.environ.get("HEARTH_HOME"):
        temp_home = tempfile.mkdtemp(prefix="hearth-selftest-")
        os.environ["HEARTH_HOME"] = temp_home
        os.environ["HEARTH_KEYRING"] = "0"  # a throwaway store must not leave a key in the user's keychain
        os.environ.setdefault("HEARTH_PASSPHRASE", secrets.token_urlsafe(18))
    try:
        return _run(services, screenshot)
    finally:
        if temp_home is not None:
            shutil.rmtree(temp_home, ignore_errors=True)


def _run(services: Services, screenshot: str | None) -> int:
    from PySide6.QtCore import QEvent, QObject, QTimer

    from desktop.ui.app import build_window, make_app, seconds_since_process_start

    app: Any = make_app()
    session: Any
    window: Any
    session, window = build_window(services)
    if not env_passphrase():
        session.passphrase.passphrase_will_ask.connect(
            lambda _first: _fail(app, state, "this store needs a passphrase: set HEARTH_PASSPHRASE for the self-test")
        )
    session.chats.max_tokens = MAX_TOKENS
    state: dict[str, Any] = {"code": None, "message": "", "stage": "starting", "t0": time.monotonic()}

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "paint" not in state:
                state["paint"] = seconds_since_process_start()
            return False

    painter = FirstPaint()
    window.installEventFilter(painter)

    def stage(name: str) -> None:
        state["stage"] = name

    def on_store_open() -> None:
        stage("loading the model")

    def on_engine_load(_name: str) -> None:
        state["model"] = time.monotonic() - state["t0"]
        if state.get("asked"):
            return
        state["asked"] = True
        if window.pages.currentWidget() is window.welcome:
            window.welcome.finish()  # first run: keep the bundled model, add no folder
        stage("answering")
        state["t_ask"] = time.monotonic()
        window.composer.setPlainText(QUESTION)
        window.composer.submit()  # the GUI path: composer → session → engine worker → streamed signals

    def on_finish(result: dict[str, Any]) -> None:
        answer = window.chat.last_answer()
        text = answer.text.strip() if answer is not None else ""
        if result["status"] != "complete" or not text:
            _fail(
                app,
                state,
                f"the answer did not complete ({result['status']}: {result.get('error') or 'empty'})",
            )
            return
        state["answer_s"] = time.monotonic() - state["t_ask"]
        state["chars"] = len(text)
        if screenshot:
            app.processEvents()
            path = Path(screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(path), "PNG"):
                _fail(app, state, f"could not write the screenshot {path}")
                return
        state["code"] = 0
        app.quit()

    session.store_did_open.connect(on_store_open)
    session.store_did_fail.connect(lambda message: _fail(app, state, f"store: {message}"))
    session.engine_did_load.connect(on_engine_load)
    session.engine_did_fail.connect(lambda message: _fail(app, state, f"model: {message}"))
    session.action_did_fail.connect(lambda message: _fail(app, state, message))
    session.chats.generation_did_finish.connect(on_finish)
    timeout = QTimer()
    timeout.setSingleShot(True)
    timeout.timeout.connect(lambda: _fail(app, state, f"timed out after {DEADLINE_S:.0f} s while {state['stage']}"))
    timeout.start(int(DEADLINE_S * 1000))

    def start() -> None:
        stage("unlocking the store")
        if window.pages.currentWidget() is window.welcome:
            window.welcome.start_button.click()  # first run: through the welcome page like a user
        else:
            window.start()

    window.resize(1100, 720)
    window.show()
    QTimer.singleShot(0, start)
    try:
        app.exec()
    finally:
        session.shutdown()
    if state["code"] != 0:
        print(f"hearth: self-test failed: {state['message'] or 'the window closed early'}", file=sys.stderr)
        return 1
    print(
        f"self-test ok: first paint {state.get('paint', float('nan')):.2f} s after process start; "
        f"model ready {state['model']:.2f} s after the window; answer of {state['chars']} characters "
        f"in {state['answer_s']:.2f} s"
    )
    if screenshot:
        print(f"screenshot: {screenshot}")
    return 0


def _fail(app: Any, state: dict[str, Any], message: str) -> None:
    if state.get("code") is None:
        state["code"], state["message"] = 1, message
    app.quit()
