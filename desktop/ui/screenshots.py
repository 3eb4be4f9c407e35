"""Screenshots of the main views for the README: `python -m desktop.ui.screenshots [--sizes-only] [OUT_DIR]`.

Under X (`xvfb-run -s "-screen 0 1920x1080x24" python -m desktop.ui.screenshots`) it renders the real
window through the xcb platform, as a user's desktop does; without DISPLAY, offscreen. The chat is shot at
1280x800 and 1024x640 in light and dark (chat-<size>-<theme>.png: nothing may be clipped there);
`--sizes-only` stops after those. Runs the real app against a throwaway HEARTH_HOME: the chat shows a real
answer streamed from the bundled model (greedy, so the picture is reproducible); the documents view shows
a real ingest of two files the script writes, one of them deliberately broken to show a failure reason;
the personalize view shows a real short training run in the background process on a made-up garden journal.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("docs/screenshots")
SIZE = (1180, 760)
SIZES = [(1280, 800), (1024, 640)]


def main(argv: list[str]) -> int:
    sizes_only = "--sizes-only" in argv
    rest = [a for a in argv if a != "--sizes-only"]
    out = Path(rest[0]) if rest else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    home = tempfile.mkdtemp(prefix="hearth-shots-")
    os.environ.update(HEARTH_HOME=home, HEARTH_KEYRING="0", HEARTH_PASSPHRASE="screenshots only")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    try:
        return _shoot(out, Path(home), sizes_only)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _wait(app: Any, signal: Any, timeout_s: float = 600) -> list[Any]:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list[Any] = []

    def on(*args: Any) -> None:
        got.extend(args)
        loop.quit()

    signal.connect(on)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(on)
    if not got:
        raise SystemExit(f"screenshots: timed out waiting for {signal}")
    return got


def _save(app: Any, widget: Any, path: Path) -> None:
    for _ in range(5):
        app.processEvents()
    if not widget.grab().save(str(path), "PNG"):
        raise SystemExit(f"screenshots: could not write {path}")
    print(path)


def _shoot(out: Path, home: Path, sizes_only: bool = False) -> int:
    from storage.offline import ensure_offline

    ensure_offline()
    from desktop.services import Services
    from desktop.ui.app import build_window, make_app
    from desktop.ui.dialogs import UnlockDialog

    app: Any = make_app()
    services = Services()
    session: Any
    window: Any
    session, window = build_window(services)
    session.chats.temperature, session.chats.seed = 0.0, 1
    window.resize(*SIZE)
    window.show()
    _save(app, window, out / "welcome.png")
    window.welcome.start_button.click()
    _wait(app, session.engine_did_load)
    window.welcome.finish()  # the bundled model, no folder

    session.chats.max_tokens = 60
    window.composer.setPlainText("Give me three tips for better sleep.")
    window.composer.submit()
    _wait(app, session.chats.generation_did_finish)
    session.chats.new_chat()
    session.chats.max_tokens = 120
    window.composer.setPlainText("Write a Python function that reverses a string.")
    window.composer.submit()
    _wait(app, session.chats.generation_did_finish)
    _wait(app, session.chats.conversations_did_load)
    _sizes(app, session, window, out)
    if sizes_only:
        session.shutdown()
        services.close()
        return 0
    _save(app, window, out / "chat.png")

    window.sidebar.focus_search()
    window.sidebar.search_box.setText("sleep")
    _wait(app, session.chats.search_did_finish)
    _save(app, window, out / "search.png")
    window.sidebar.search_box.clear()

    if window.tabs.isTabEnabled(1):
        docs = home / "sample-docs"
        docs.mkdir()
        (docs / "garden-notes.md").write_text(
            "# Garden notes\n\nWater the tomatoes every morning in July; basil likes afternoon shade.\n",
            "utf-8",
        )
        (docs / "scan.pdf").write_bytes(b"%PDF-1.4 not really a PDF")
        window.tabs.setCurrentIndex(1)
        window.documents.set_busy(True)
        session.documents.add([str(docs)])
        _wait(app, session.documents.ingest_did_finish)
        _wait(app, session.documents.documents_did_load)
        _save(app, window, out / "documents.png")
        window.tabs.setCurrentIndex(0)

    _personalize(app, session, window, out)

    window.open_settings()  # asks the store worker for the key custody first, then opens
    deadline = time.monotonic() + 60
    while getattr(window, "settings_dialog", None) is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)  # a script, not a test: polling is fine here
    dialog = window.settings_dialog
    dialog.adjustSize()
    _save(app, dialog, out / "settings.png")
    dialog.reject()

    unlock = UnlockDialog(first_run=False)
    unlock.show()
    unlock.adjustSize()
    _save(app, unlock, out / "unlock.png")
    unlock.close()

    session.shutdown()
    services.close()
    return 0


def _sizes(app: Any, session: Any, window: Any, out: Path) -> None:
    """The chat at each size and theme, with a pinned chat, a folder and a date group in the sidebar."""
    from desktop.ui import theme

    def organise() -> None:
        chats = session.services.store().chats
        listed = chats.list()
        chats.pin(listed[-1]["id"])
        cid = chats.create("Weekend trip to the coast: trains, tides and where to eat")
        chats.add_message(cid, "user", "Which trains go to the coast on Saturday morning?")
        chats.set_folder(cid, "Travel")

    session.store_worker.call(organise)  # a script: waiting on the worker from here is fine
    session.chats.refresh()
    _wait(app, session.chats.conversations_did_load)
    styles = theme.install(app)
    for mode in ("light", "dark"):
        styles.set_mode(mode)
        for width, height in SIZES:
            window.resize(width, height)
            _save(app, window, out / f"chat-{width}x{height}-{mode}.png")
    styles.set_mode("system")
    window.resize(*SIZE)


def _journal(seed: int = 7, entries: int = 60) -> list[tuple[str, str]]:
    """A made-up garden journal in one voice (deterministic): enough text for a short real training run."""
    import random

    rng = random.Random(seed)
    plants = ["tomatoes", "basil", "runner beans", "lavender", "courgettes", "sweet peas", "chard", "mint"]
    jobs = ["watered", "mulched", "pinched out", "tied in", "fed with comfrey tea", "netted", "thinned", "staked"]
    weather = ["a dry, bright morning", "drizzle since dawn", "a muggy afternoon", "wind off the hill", "cool sun"]
    notes = ["Next year: sow a fortnight later.", "Slugs again by the water butt.", "Bees all over it by noon."]
    days = []
    for day in range(1, entries + 1):
        lines = [f"Garden journal, day {day}: {rng.choice(weather)}."]
        for _ in range(4):
            lines.append(f"I {rng.choice(jobs)} the {rng.choice(plants)} in bed {rng.randint(1, 6)}.")
        lines.append(rng.choice(notes))
        days.append((f"Write my garden journal for day {day}.", " ".join(lines)))
    return days


def _personalize(app: Any, session: Any, window: Any, out: Path) -> None:
    """A real, short background run (its own process), then the view with the new version listed."""
    import json

    def write_chats() -> None:
        chats = session.services.store().chats
        for question, answer in _journal():
            cid = chats.create(question[:40])
            chats.add_message(cid, "user", question)
            chats.add_message(cid, "assistant", answer)

    session.store_worker.call(write_chats)  # a script: waiting on the worker from here is fine
    session.personalization.job_config = json.dumps(
        {"max_steps": 12, "seq_len": 64, "batch_size": 1, "warmup_steps": 1}
    )
    window.tabs.setCurrentWidget(window.personalize)
    window.personalize.start_button.click()
    _wait(app, session.personalization.personalize_did_finish, timeout_s=1800)
    _wait(app, session.personalization.adapters_did_load)
    _save(app, window, out / "personalize.png")
    window.tabs.setCurrentIndex(0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
