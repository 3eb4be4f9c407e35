"""The chat window end to end: real store, real model, real key presses; waits on signals, never sleeps."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QElapsedTimer, Qt, QTimer

ANSWER_TIMEOUT_MS = 300_000  # the shared test machine can be slow; a hang still fails


def send(qtbot: Any, app: Any, text: str) -> dict[str, Any]:
    """Type text and press Enter; return the generation result."""
    composer = app.window.composer
    composer.setFocus()
    composer.setPlainText(text)
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as finished:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    return finished.args[0]


def test_send_streams_the_answer_and_saves_it(qtbot: Any, app: Any, store_call: Any) -> None:
    batches: list[str] = []
    app.session.chats.generation_did_stream.connect(batches.append)
    result = send(qtbot, app, "What is the capital of France?")
    assert result["status"] == "complete", result
    assert batches, "no text was streamed"
    answer = app.window.chat.last_answer()
    assert answer is not None and answer.text == "".join(batches) and answer.text.strip()
    assert app.window.composer.toPlainText() == ""
    cid = result["conversation_id"]
    saved = store_call(app.session, lambda s: s.chats.messages(cid))
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[1]["content"] == answer.text and saved[1]["status"] == "complete"
    qtbot.waitUntil(lambda: app.window.sidebar.titles() == ["What is the capital of France?"])


def test_shift_enter_adds_a_line_instead_of_sending(qtbot: Any, app: Any, store_call: Any) -> None:
    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "first")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second")
    assert composer.toPlainText() == "first\nsecond"
    assert not app.session.chats.generating and app.window.chat.messages == []


def test_stop_mid_answer_keeps_what_was_written(qtbot: Any, app: Any, store_call: Any) -> None:
    app.session.chats.max_tokens = 400
    app.window.composer.setPlainText("Count from 1 to 300, one number per line.")
    with qtbot.waitSignal(app.session.chats.generation_did_stream, timeout=ANSWER_TIMEOUT_MS):
        app.window.composer.submit()
    assert app.window.stop_button.isVisible()
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as finished:
        qtbot.keyClick(app.window, Qt.Key.Key_Escape)
    result = finished.args[0]
    assert result["status"] == "interrupted", result
    answer = app.window.chat.last_answer()
    assert answer is not None and answer.note.text() == "Stopped"
    saved = store_call(app.session, lambda s: s.chats.messages(result["conversation_id"]))[-1]
    assert saved["status"] == "interrupted" and saved["content"] == answer.text
    assert app.window.send_button.isVisible() and not app.window.stop_button.isVisible()


def test_new_chat_starts_empty_and_keeps_the_old_one(qtbot: Any, app: Any, store_call: Any) -> None:
    first = send(qtbot, app, "Name a colour.")
    qtbot.keyClick(app.window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert app.session.chats.conversation_id is None
    assert app.window.chat.messages == [] and app.window.title.text() == "New chat"
    second = send(qtbot, app, "Name an animal.")
    assert second["conversation_id"] != first["conversation_id"]
    qtbot.waitUntil(lambda: sorted(app.window.sidebar.titles()) == ["Name a colour.", "Name an animal."])


def test_search_finds_an_old_chat_and_opens_it(qtbot: Any, app: Any, store_call: Any) -> None:
    def seed(store: Any) -> int:
        cid = store.chats.create(title="Trip planning")
        store.chats.add_message(cid, "user", "Where do zanzibar otters live?")
        store.chats.add_message(cid, "assistant", "They are not a real species.")
        return cid

    old = store_call(app.session, seed)
    send(qtbot, app, "Hello there")
    qtbot.keyClick(app.window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert app.window.sidebar.search_box.hasFocus()
    with qtbot.waitSignal(app.session.chats.search_did_finish, timeout=10_000):
        qtbot.keyClicks(app.window.sidebar.search_box, "zanzibar")
    sidebar = app.window.sidebar
    qtbot.waitUntil(lambda: sidebar.list.count() == 1)
    item = sidebar.list.item(0)
    assert item.text().startswith("Trip planning") and "zanzibar" in item.text()
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000) as opened:
        sidebar.list.itemClicked.emit(item)
    assert opened.args[0]["id"] == old
    assert app.window.chat.messages[0].text == "Where do zanzibar otters live?"


def test_rename_delete_persona_and_export(qtbot: Any, app: Any, store_call: Any, tmp_path: Any) -> None:
    result = send(qtbot, app, "Say hi.")
    cid = result["conversation_id"]
    app.session.chats.rename(cid, "Greetings")
    qtbot.waitUntil(lambda: app.window.sidebar.titles() == ["Greetings"])
    with qtbot.waitSignal(app.session.action_did_succeed, timeout=10_000):
        app.session.chats.set_persona("You are a pirate.")
    assert store_call(app.session, lambda s: s.chats.get(cid))["system_prompt"] == "You are a pirate."
    out = tmp_path / "chat.md"
    with qtbot.waitSignal(app.session.action_did_succeed, timeout=10_000):
        app.session.chats.export(cid, out, "md")
    text = out.read_text("utf-8")
    assert text.startswith("# Greetings") and "Say hi." in text and "You are a pirate." in text
    app.session.chats.delete(cid)
    qtbot.waitUntil(lambda: app.window.sidebar.titles() == [])
    assert app.session.chats.conversation_id is None
    assert store_call(app.session, lambda s: s.chats.list()) == []


def test_regenerate_replaces_the_last_answer(qtbot: Any, app: Any, store_call: Any) -> None:
    first = send(qtbot, app, "Name a fruit.")
    app.session.chats.temperature, app.session.chats.seed = 0.9, 7
    regenerate = app.window.chat.last_answer().regenerate_button
    assert regenerate.isVisible()
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS) as finished:
        regenerate.click()
    assert finished.args[0]["conversation_id"] == first["conversation_id"]
    saved = store_call(app.session, lambda s: s.chats.messages(first["conversation_id"]))
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[1]["content"] == app.window.chat.last_answer().text
    assert len(app.window.chat.messages) == 2


def test_event_loop_stays_responsive_while_an_answer_streams(qtbot: Any, app: Any, store_call: Any) -> None:
    """The GUI thread keeps ticking: the longest gap between 10 ms timer ticks stays under 100 ms."""
    app.session.chats.max_tokens = 40
    gaps: list[int] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)

    def tick() -> None:
        gaps.append(clock.restart())

    timer.timeout.connect(tick)
    app.window.composer.setPlainText("Write a long story about a lighthouse keeper.")
    with qtbot.waitSignal(app.session.chats.generation_did_stream, timeout=ANSWER_TIMEOUT_MS):
        app.window.composer.submit()
    clock.start()
    timer.start()
    with qtbot.waitSignal(app.session.chats.generation_did_finish, timeout=ANSWER_TIMEOUT_MS):
        pass
    timer.stop()
    assert len(gaps) > 10, "the answer ended before the loop could be measured"
    assert max(gaps) < 100, f"the GUI thread stalled for {max(gaps)} ms while streaming"
