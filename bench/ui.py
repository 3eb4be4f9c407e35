"""Conversation switching and long-chat rendering in the real window: p50/p95 against a baseline.

A throwaway encrypted store holds 50 conversations (12-40 messages each) and one of 500 messages. The
window (real widgets; offscreen unless DISPLAY is set, e.g. under xvfb-run) is unlocked without loading a
model. Measured, each from the user's click to a painted window (`repaint()` is synchronous):
- switch: `open_conversation` on a random ordinary chat -> store worker -> signal -> bubbles -> painted;
- render 500: the same for the 500-message chat.
Both are the first paint (the bubbles that fill the view); "page filled" adds the rest of the first page,
rendered right after that paint, for reference. "cold" empties the rendered-Markdown cache before every
open (a chat opened for the first time since the app started); the plain rows keep it, as a user going
back and forth between chats does.
Baseline, in the same run: the 500-message chat rendered whole (one bubble per message, what the view
did before it paged), so the ratio shows what paging buys. Two corpora: plain prose, and Markdown with
code blocks (Pygments highlighting is the costly part of a bubble). Goal: p95 <= 150 ms for all four.
Run: `.venv/bin/python bench/ui.py [rounds]` (default 30).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_MS = 150.0
PROSE = (
    "Sure. The short version is that the tomatoes want sun and steady water, and the basil prefers a "
    "little afternoon shade. If the leaves curl, water earlier in the day rather than more."
)
CODE = (
    "Here is a version that keeps the order:\n\n```python\ndef unique(items):\n    seen = set()\n"
    "    out = []\n    for item in items:\n        if item not in seen:\n            seen.add(item)\n"
    "            out.append(item)\n    return out\n```\n\nIt runs in **O(n)**; `dict.fromkeys` does the same."
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed(store: Any, reply: str, rng: random.Random) -> tuple[list[int], int]:
    ids = []
    with store.db.atomic():
        for n in range(50):
            cid = store.chats.create(f"Conversation {n}: planning the garden and other things")
            for i in range(rng.randint(12, 40)):
                role = "user" if i % 2 == 0 else "assistant"
                text = f"Question {i} about beds" if role == "user" else reply.replace("items", f"items_{n}_{i}")
                store.chats.add_message(cid, role, text)
            ids.append(cid)
        long_id = store.chats.create("The 500-message chat")
        for i in range(500):
            role = "user" if i % 2 == 0 else "assistant"
            text = f"Question {i}" if role == "user" else reply.replace("items", f"items_{i}")  # all distinct
            store.chats.add_message(long_id, role, text)
    return ids, long_id


def run_corpus(name: str, reply: str, rounds: int) -> dict[str, list[float]]:
    from PySide6.QtCore import QEventLoop, QTimer

    from desktop.services import Services
    from desktop.ui import chat_view, markdown
    from desktop.ui.app import build_window, make_app

    app: Any = make_app()
    services = Services()
    session: Any
    window: Any
    session, window = build_window(services)
    session.load_engine = lambda: None  # the model plays no part in switching chats
    window.resize(1280, 800)
    window.show()

    def wait(signal: Any) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(60_000, loop.quit)
        loop.exec()
        signal.disconnect(loop.quit)

    session.open_store()
    wait(session.chats.conversations_did_load)
    rng = random.Random(7)
    ids, long_id = session.store_worker.call(lambda: seed(services.store(), reply, rng))

    def timed_open(cid: int, page: list[float] | None = None, cold: bool = False) -> float:
        if cold:
            markdown.render_cached.cache_clear()
        start = time.perf_counter()
        session.chats.open(cid)
        wait(session.chats.conversation_did_open)
        window.repaint()
        painted = (time.perf_counter() - start) * 1000
        while len(window.chat.messages) < min(chat_view.PAGE, len(window.chat._saved)):
            app.processEvents()  # the rest of the page, rendered right after the first paint
        window.repaint()
        if page is not None:
            page.append((time.perf_counter() - start) * 1000)
        return painted

    times: dict[str, list[float]] = {
        "switch": [],
        "render 500": [],
        "switch, cold": [],
        "render 500, cold": [],
        "switch, page filled": [],
        "500, page filled": [],
        "baseline: 500 unpaged": [],
    }
    timed_open(ids[0])  # warm caches (markdown parser, Pygments lexer, fonts)
    for _ in range(rounds):
        times["switch"].append(timed_open(rng.choice(ids), times["switch, page filled"]))
        times["render 500"].append(timed_open(long_id, times["500, page filled"]))
        times["switch, cold"].append(timed_open(rng.choice(ids), cold=True))
        times["render 500, cold"].append(timed_open(long_id, cold=True))
    screenful, page = chat_view.ChatView._screenful, chat_view.PAGE
    chat_view.ChatView._screenful = lambda self, saved: len(saved)  # type: ignore[method-assign]
    chat_view.PAGE = 10_000  # the baseline: every message gets its bubble at once
    for _ in range(max(3, rounds // 6)):
        timed_open(ids[0], cold=True)
        times["baseline: 500 unpaged"].append(timed_open(long_id, cold=True))
    chat_view.ChatView._screenful, chat_view.PAGE = screenful, page  # type: ignore[method-assign]
    session.shutdown()
    services.close()
    window.close()
    window.deleteLater()
    app.processEvents()
    return times


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 30
    home = tempfile.mkdtemp(prefix="hearth-bench-ui-")
    os.environ.update(HEARTH_HOME=home, HEARTH_KEYRING="0", HEARTH_PASSPHRASE="bench passphrase")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from storage import cpu
    from storage.offline import ensure_offline

    ensure_offline()
    print(f"CPU: {cpu.describe()}; Qt platform: {os.environ.get('QT_QPA_PLATFORM') or 'xcb'}; {rounds} rounds")
    ok = True
    try:
        for name, reply in (("prose", PROSE), ("markdown+code", CODE)):
            times = run_corpus(name, reply, rounds)
            shutil.rmtree(home, ignore_errors=True)
            Path(home).mkdir()
            baseline = statistics.median(times["baseline: 500 unpaged"])
            for what, values in times.items():
                p50, p95 = statistics.median(values), percentile(values, 0.95)
                line = f"{name:>14}  {what:<22} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
                if what in ("switch", "render 500", "switch, cold", "render 500, cold"):
                    line += f"  ({baseline / p50:.1f}x faster than unpaged)"
                    verdict = p95 <= GOAL_MS
                    ok = ok and verdict
                    line += "  ok" if verdict else f"  OVER the {GOAL_MS:.0f} ms goal"
                print(line)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
