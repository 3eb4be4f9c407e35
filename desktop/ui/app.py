"""Start the window: QApplication, the composition of session and window, and the event loop.

Order (after `Services` was built by the CLI): Qt application → passphrase bridge → `ChatSession` (relays
over the services' two executors, and its features) → `MainWindow` shown → store unlocked on the store
executor → model loaded on the engine executor. The window paints before any database or model work starts,
so it shows in well under 1.5 s; shutdown is the reverse: stop a reply and the API, stop delivering results,
then the CLI's `services.close()` lets the executors finish and closes engine and store.
"""

from __future__ import annotations

import os
import sys
import time

from desktop.services import Services

# psutil's process start time lets the self-test and bench/startup.py report time to first paint
# measured from process start, including interpreter start-up and imports.


def make_app() -> object:
    """The QApplication, created once, wearing Hearth's theme (desktop.ui.theme: Fusion, light or dark
    following the OS unless the user forced one)."""
    from PySide6.QtWidgets import QApplication

    from desktop.ui import theme

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Hearth")
        app.setApplicationDisplayName("Hearth")
        app.setDesktopFileName("hearth")
    theme.install(app)
    return app


def seconds_since_process_start() -> float:
    import psutil

    return time.time() - psutil.Process(os.getpid()).create_time()


def build_window(services: Services) -> tuple[object, object]:
    """(session, window) for the current HEARTH_HOME; the window is not shown yet."""
    from desktop.ui import onboarding
    from desktop.ui.session import ChatSession, PassphraseBridge
    from desktop.ui.window import MainWindow

    bridge = PassphraseBridge()
    from storage.keys import env_passphrase

    services.set_passphrase_source(env_passphrase() or bridge)
    session = ChatSession(services, bridge)
    window = MainWindow(session, first_run=onboarding.needed())
    return session, window


def run_app(services: Services, self_test: bool = False, screenshot: str | None = None) -> int:
    """`hearth` with no command: the window, or with `self_test` the offscreen end-to-end check."""
    if self_test:
        from desktop.ui.selftest import run_self_test

        return run_self_test(services, screenshot)
    if screenshot:
        print("hearth: --screenshot only works with --self-test", file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer

    app = make_app()
    session, window = build_window(services)
    app.aboutToQuit.connect(session.stop)  # type: ignore[attr-defined]
    window.show()  # type: ignore[attr-defined]
    QTimer.singleShot(0, window.start)  # type: ignore[attr-defined]
    try:
        return int(app.exec())  # type: ignore[attr-defined]
    finally:
        session.shutdown()  # type: ignore[attr-defined]
