"""Organising chats as a person does: pin, file in folders, delete with undo, jump to a search hit,
edit a sent message and switch between the versions, long chats paged. Real store, real model."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt

from desktop.ui.chat_view import FIRST_PAINT, PAGE
from tests.gui.test_chat_window import ANSWER_TIMEOUT_MS, send


def send_saved(qtbot: Any, app: Any, text: str) -> dict[str, Any]:
    """Send, then wait until the bubbles know their saved rows (the refresh after the reply)."""
    result = send(qtbot, app, text)
    qtbot.waitUntil(lambda: all(m.message_id is not None for m in app.window.chat.messages), timeout=10_000)
    return result


def trigger(menu: Any, *path: str) -> None:
    """Click a context-menu entry by its visible text (submenus by their titles)."""
    current = menu  # `menu` stays referenced: its submenus live only as long as it does
    for title in path[:-1]:
        current = next(a.menu() for a in current.actions() if a.text() == title)
    next(a for a in current.actions() if a.text() == path[-1]).trigger()


def seed_chats(store: Any, titles: list[str]) -> list[int]:
    ids = []
    for title in titles:
        cid = store.chats.create(title)
        store.chats.add_message(cid, "user", f"question about {title}")
        ids.append(cid)
    return ids


def test_pin_and_folders_group_the_sidebar(qtbot: Any, app: Any, store_call: Any) -> None:
    garden, taxes, trip = store_call(app.session, lambda s: seed_chats(s, ["Garden", "Taxes", "Trip"]))
    sidebar = app.window.sidebar
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        app.session.chats.refresh()
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        trigger(sidebar.menu_for(garden), "Pin")
    assert sidebar.headings()[0] == "PINNED" and sidebar.titles()[0] == "Garden"
    sidebar.ask_folder = lambda cid: sidebar.conversation_will_file.emit(cid, "Paperwork")  # the name dialog
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        trigger(sidebar.menu_for(taxes), "Move to folder", "New folder…")
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        trigger(sidebar.menu_for(trip), "Move to folder", "Paperwork")
    assert sidebar.headings() == ["PINNED", "Paperwork"]
    assert sidebar.titles() == ["Garden", "Trip", "Taxes"]
    assert store_call(app.session, lambda s: s.chats.get(trip))["folder"] == "Paperwork"
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        trigger(sidebar.menu_for(garden), "Unpin")
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        trigger(sidebar.menu_for(trip), "Remove from folder")
    assert sidebar.headings() == ["Paperwork", "TODAY"]


def test_delete_can_be_undone_and_then_is_final(qtbot: Any, app: Any, store_call: Any) -> None:
    keep, doomed = store_call(app.session, lambda s: seed_chats(s, ["Keep me", "Delete me"]))
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        app.session.chats.refresh()
    sidebar, bar = app.window.sidebar, app.window.undo_bar
    with qtbot.waitSignal(app.session.chats.conversation_did_trash, timeout=10_000):
        trigger(sidebar.menu_for(doomed), "Delete")
    qtbot.waitUntil(lambda: sidebar.titles() == ["Keep me"])
    assert bar.isVisible() and "Delete me" in bar.label.text()
    with qtbot.waitSignal(app.session.chats.conversations_did_load, timeout=10_000):
        qtbot.keyClick(app.window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Undo
    assert sorted(sidebar.titles()) == ["Delete me", "Keep me"] and not bar.isVisible()
    with qtbot.waitSignal(app.session.chats.conversation_did_trash, timeout=10_000):
        trigger(sidebar.menu_for(doomed), "Delete")
    bar._timer.setInterval(10)  # the real 8 s, shortened; the expiry path is the same
    bar._timer.start()
    with qtbot.waitSignal(bar.undo_did_expire, timeout=10_000):
        pass
    qtbot.waitUntil(
        lambda: store_call(app.session, lambda s: s.db.execute("SELECT count(*) FROM conversations").fetchone()[0]) == 1
    )
    assert store_call(app.session, lambda s: [c["id"] for c in s.chats.list()]) == [keep]


def test_search_opens_the_chat_at_the_matching_message_highlighted(qtbot: Any, app: Any, store_call: Any) -> None:
    def seed(store: Any) -> tuple[int, int]:
        cid = store.chats.create("Long chat")
        hit = 0
        for i in range(120):
            text = "we talked about the quokka habitat" if i == 5 else f"message number {i}"
            mid = store.chats.add_message(cid, "user" if i % 2 == 0 else "assistant", text)
            hit = mid if i == 5 else hit
        return cid, hit

    cid, hit = store_call(app.session, seed)
    sidebar = app.window.sidebar
    sidebar.search_box.setFocus()
    with qtbot.waitSignal(app.session.chats.search_did_finish, timeout=10_000):
        qtbot.keyClicks(sidebar.search_box, "quokka")
    qtbot.waitUntil(lambda: sidebar.list.count() == 1)
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000):
        sidebar.list.itemClicked.emit(sidebar.list.item(0))
    chat = app.window.chat
    widget = next(w for w in chat.messages if w.message_id == hit)  # far above the last page, yet rendered
    assert widget.property("highlighted") is True
    assert "background-color" in widget.body.text() and "quokka" in widget.body.text()
    qtbot.waitUntil(lambda: not widget.visibleRegion().isEmpty())  # scrolled to it
    assert app.session.chats.conversation_id == cid


def test_edit_and_resend_keeps_the_old_reply_as_a_switchable_branch(
    qtbot: Any, app: Any, store_call: Any, tmp_path: Any
) -> None:
    first = send_saved(qtbot, app, "Name a fruit.")
    cid = first["conversation_id"]
    chat = app.window.chat
    old_answer = chat.last_answer().text
    question = chat.messages[0]
    assert question.edit_button.isVisible()
    question.edit_button.click()
    assert app.window.composer.toPlainText() == "Name a fruit." and app.window.edit_banner.isVisible()
    app.window.composer.setPlainText("Name a vegetable.")
    with qtbot.waitSignal(app.session.chats.conversation_did_refresh, timeout=ANSWER_TIMEOUT_MS):
        qtbot.keyClick(app.window.composer, Qt.Key.Key_Return)
    assert chat.messages[0].text == "Name a vegetable."
    edited = chat.messages[0]
    assert edited.branch_label.isVisible() and edited.branch_label.text() == "2 / 2"
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000):
        edited.previous_button.click()
    assert [m.text for m in chat.messages] == ["Name a fruit.", old_answer]
    assert chat.messages[0].branch_label.text() == "1 / 2"
    tree = store_call(app.session, lambda s: s.chats.tree(cid))
    assert len(tree) == 4 and tree[2]["parent_id"] is None and tree[3]["parent_id"] == tree[2]["id"]
    out = tmp_path / "chat.json"
    with qtbot.waitSignal(app.session.action_did_succeed, timeout=10_000):
        app.session.chats.export(cid, out, "json")
    exported = json.loads(out.read_text("utf-8"))
    assert [m["content"] for m in exported["messages"]] == ["Name a fruit.", old_answer]
    assert len(exported["tree"]) == 4 and {m["parent_id"] for m in exported["tree"]} == {
        None,
        tree[0]["id"],
        tree[2]["id"],
    }


def test_regenerate_keeps_the_old_answer_as_a_version(qtbot: Any, app: Any, store_call: Any) -> None:
    first = send_saved(qtbot, app, "Name a colour.")
    app.session.chats.temperature, app.session.chats.seed = 0.9, 7
    with qtbot.waitSignal(app.session.chats.conversation_did_refresh, timeout=ANSWER_TIMEOUT_MS):
        app.window.chat.last_answer().regenerate_button.click()
    assert app.window.chat.messages[0].branch_label.text() == "2 / 2"
    assert len(store_call(app.session, lambda s: s.chats.tree(first["conversation_id"]))) == 4


def test_reply_shows_speed_and_context_use_and_keeps_them(qtbot: Any, app: Any) -> None:
    result = send_saved(qtbot, app, "Say hello.")
    stats = app.window.chat.last_answer().stats
    assert stats.isVisible() and "tok/s" in stats.text() and "context" in stats.text()
    app.session.chats.new_chat()
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000):
        app.session.chats.open(result["conversation_id"])
    assert "tok/s" in app.window.chat.last_answer().stats.text()  # saved with the reply


def test_a_long_chat_renders_a_page_and_loads_earlier_ones(qtbot: Any, app: Any, store_call: Any) -> None:
    def seed(store: Any) -> int:
        cid = store.chats.create("Very long")
        for i in range(2 * PAGE + 5):
            store.chats.add_message(cid, "user" if i % 2 == 0 else "assistant", f"line {i}")
        return cid

    cid = store_call(app.session, seed)
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000):
        app.session.chats.open(cid)
    chat = app.window.chat
    assert len(chat.messages) == FIRST_PAINT and chat.messages[-1].text == f"line {2 * PAGE + 4}"
    qtbot.waitUntil(lambda: len(chat.messages) == PAGE)  # the page fills in right after the first paint
    assert chat.earlier_button.isVisible() and chat.messages[-1].text == f"line {2 * PAGE + 4}"
    chat.earlier_button.click()
    chat.earlier_button.click()
    assert len(chat.messages) == 2 * PAGE + 5 and chat.messages[0].text == "line 0"
    assert not chat.earlier_button.isVisible()


def test_per_chat_temperature_and_model_are_kept_with_the_chat(
    qtbot: Any, app: Any, store_call: Any, monkeypatch: Any
) -> None:
    from desktop.ui.dialogs import PersonaDialog

    engine = app.services.engine()
    used: list[float] = []
    real_chat = engine.chat

    def spy(messages: Any, params: Any = None, **options: Any) -> Any:  # the real engine, its sampling recorded
        used.append(params.temperature)
        return real_chat(messages, params, **options)

    monkeypatch.setattr(engine, "chat", spy)
    app.session.chats.set_options(temperature=0.3)  # a new chat: kept until its first message creates it
    app.session.switch_model(app.session.model_name)
    first = send_saved(qtbot, app, "Say yes.")
    saved = store_call(app.session, lambda s: s.chats.get(first["conversation_id"]))["options"]
    assert saved == {"temperature": 0.3, "model": app.session.model_name} and used == [0.3]
    app.session.chats.new_chat()
    send(qtbot, app, "Say no.")
    assert used == [0.3, 0.0]  # another chat: the default (the fixture's greedy 0.0)
    with qtbot.waitSignal(app.session.chats.conversation_did_open, timeout=10_000):
        app.session.chats.open(first["conversation_id"])
    assert app.session.chats.options["temperature"] == 0.3
    dialog = PersonaDialog("", "default", app.window, app.session.chats.options.get("temperature"))
    assert dialog.temperature_value() == 0.3
    dialog.temperature.setValue(dialog.temperature.minimum())
    assert dialog.temperature.text() == "Default" and dialog.temperature_value() is None
    dialog.deleteLater()
