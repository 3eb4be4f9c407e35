"""Screenshots of the main views for the README: `python -m desktop.ui.screenshots [--sizes-only] [OUT_DIR]`.

Under X (`xvfb-run -s "-screen 0 1920x1080x24" python -m desktop.ui.screenshots`) it renders the real
window through the xcb platform, as a user's desktop does; without DISPLAY, offscreen. The chat, a chat with
an attached file, the personalize view, and the settings and unlock dialogs (drawn over the window where
they open) are shot at 1280x800 and 1024x640 in light and dark (<view>-<size>-<theme>.png: nothing may be
clipped there); the welcome page, search and documents once. `--sizes-only` skips the training run (the
personalize view then has no version to list) and the single shots. Runs the real app against a throwaway
HEARTH_HOME: the chats show real answers streamed from the bundled model (greedy, so the pictures are
reproducible); the documents view shows a real ingest of two files the script writes, one of them deliberately
broken to show a failure reason; the personalize view shows a real short training run in the background
process on a made-up garden journal.
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
FERRY = """Island ferry, summer timetable

Saturday: first boat 07:40 from pier 3, then every 90 minutes until 19:10.
Sunday: first boat 09:00, last 18:30. Bicycles travel free; dogs on a lead.
"""


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


def _settle(app: Any, seconds: float = 0.3) -> None:
    """Let layouts, the page fill and repaints run (a script, not a test: polling is fine here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def _save(app: Any, widget: Any, path: Path, over: Any = None) -> None:
    """The widget as painted; with `over`, that dialog drawn where it sits on the widget, the window dimmed
    behind it and a hairline around it (Xvfb has no window manager to draw its frame)."""
    from PySide6.QtGui import QColor, QPainter

    _settle(app)
    picture = widget.grab()
    if over is not None:
        painter = QPainter(picture)
        painter.fillRect(picture.rect(), QColor(0, 0, 0, 90))
        at = over.frameGeometry().topLeft() - widget.frameGeometry().topLeft()
        painter.drawPixmap(at, over.grab())
        painter.setPen(QColor(128, 128, 128))
        painter.drawRect(at.x(), at.y(), over.width() - 1, over.height() - 1)
        painter.end()
    if not picture.save(str(path), "PNG"):
        raise SystemExit(f"screenshots: could not write {path}")
    print(path)


def _ask(app: Any, session: Any, window: Any, text: str, max_tokens: int) -> int:
    session.chats.max_tokens = max_tokens
    window.composer.setPlainText(text)
    window.composer.submit()
    _wait(app, session.chats.generation_did_finish)
    return int(session.chats.conversation_id)


def _shoot(out: Path, home: Path, sizes_only: bool = False) -> int:
    from storage.offline import ensure_offline

    ensure_offline()
    from desktop.services import Services
    from desktop.ui.app import build_window, make_app

    app: Any = make_app()
    services = Services()
    session: Any
    window: Any
    session, window = build_window(services)
    session.chats.temperature, session.chats.seed = 0.0, 1
    window.resize(*SIZE)
    window.show()
    if not sizes_only:
        _save(app, window, out / "welcome.png")
    window.welcome.start_button.click()
    _wait(app, session.engine_did_load)
    window.welcome.finish()  # the bundled model, no folder

    _ask(app, session, window, "Give me three tips for better sleep.", 60)
    session.chats.new_chat()
    code_chat = _ask(app, session, window, "Write a Python function that reverses a string.", 120)
    session.chats.new_chat()
    timetable = home / "ferry timetable.txt"
    timetable.write_text(FERRY, "utf-8")
    window.attach_files([str(timetable)])
    _wait(app, session.chats.attachments.attachments_did_change)
    attached_chat = _ask(app, session, window, "When does the first ferry leave on Saturday?", 40)
    _wait(app, session.chats.conversations_did_load)
    _organise(app, session)

    if not sizes_only:
        _single_shots(app, session, window, out, home)
        _personalize(app, session, window)
    _sizes(app, session, window, out, code_chat, attached_chat)
    session.shutdown()
    services.close()
    return 0


def _organise(app: Any, session: Any) -> None:
    """A pinned chat, a folder and a date group in the sidebar."""

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


def _single_shots(app: Any, session: Any, window: Any, out: Path, home: Path) -> None:
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


def _sizes(app: Any, session: Any, window: Any, out: Path, code_chat: int, attached_chat: int) -> None:
    """Every view at each size and theme."""
    from desktop.ui import theme
    from desktop.ui.dialogs import UnlockDialog

    styles = theme.install(app)
    for mode in ("light", "dark"):
        styles.set_mode(mode)
        for width, height in SIZES:
            name = f"{width}x{height}-{mode}.png"
            window.resize(width, height)
            window.status.setText(f"{session.model_name} ready")
            window.tabs.setCurrentIndex(0)
            session.chats.open(code_chat)
            _wait(app, session.chats.conversation_did_open)
            _save(app, window, out / f"chat-{name}")
            session.chats.open(attached_chat)
            _wait(app, session.chats.conversation_did_open)
            deadline = time.monotonic() + 30
            while not window.attachment_bar.chips and time.monotonic() < deadline:
                _settle(app, 0.05)  # the chips follow from the store worker
            _save(app, window, out / f"attachments-{name}")
            window.tabs.setCurrentWidget(window.personalize)
            _save(app, window, out / f"personalize-{name}")
            window.tabs.setCurrentIndex(0)
            window.settings_dialog = None
            window.open_settings()  # asks the store worker for the key custody first, then opens
            deadline = time.monotonic() + 60
            while getattr(window, "settings_dialog", None) is None and time.monotonic() < deadline:
                _settle(app, 0.05)
            _save(app, window, out / f"settings-{name}", over=window.settings_dialog)
            window.settings_dialog.reject()
            session.chats.new_chat()  # the window behind the unlock dialog, as at startup: nothing shown yet
            unlock = UnlockDialog(first_run=False, parent=window)
            unlock.open()
            _save(app, window, out / f"unlock-{name}", over=unlock)
            unlock.reject()
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


def _personalize(app: Any, session: Any, window: Any) -> None:
    """A real, short background run (its own process), so the view lists the new version."""
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
    window.tabs.setCurrentIndex(0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
