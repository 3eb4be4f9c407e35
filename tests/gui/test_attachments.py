"""Files attached to one chat, as a person uses them: dropped on the chat or chosen with Attach file…, shown
as chips, sent with the first message, removed, added to the library on request. Real store, model, parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from tests.gui.test_chat_window import send

NOTES = "The ferry to the island leaves at 07:40 from pier 3.\n"


def drop(widget: Any, paths: list[Path]) -> bool:
    """Drag local files onto `widget` and drop them, as the window system delivers it; True if accepted."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    action, button, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(20, 20), action, data, button, none)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    dropped = QDropEvent(QPointF(20, 20), action, data, button, none)
    QApplication.sendEvent(widget, dropped)
    return dropped.isAccepted()


def chips(app: Any) -> list[str]:
    return [chip.summary["name"] for chip in app.window.attachment_bar.chips]


def test_a_dropped_file_is_a_chip_and_the_first_message_saves_it_with_the_chat(
    qtbot: Any, app: Any, store_call: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "ferry notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    window, session = app.window, app.session
    assert not drop(window.chat.parentWidget(), [tmp_path])  # a folder is not a file to attach
    with qtbot.waitSignal(session.chats.attachments.attachments_did_change, timeout=60_000):
        assert drop(window.chat.parentWidget(), [notes])
    assert chips(app) == ["ferry notes.txt"] and window.attachment_bar.isVisible()
    chip = window.attachment_bar.chips[0]
    assert "used in this chat only" in chip.toolTip()
    assert chip.remove_button.accessibleName() == "Remove ferry notes.txt"
    assert store_call(session, lambda s: s.db.execute("SELECT count(*) FROM chat_attachments").fetchone()[0]) == 0
    with qtbot.waitSignal(session.chats.attachments.attachments_did_change, timeout=60_000):
        result = send(qtbot, app, "When does the ferry leave?")
    assert result["status"] == "complete", result
    assert result["sources"] == [{"source": "ferry notes.txt", "location": "whole file", "attached": True}]
    assert "ferry notes.txt (whole file), attached" in window.chat.last_answer().sources.text()
    cid = result["conversation_id"]
    saved = store_call(session, lambda s: s.attachments.list(cid))
    assert [a["name"] for a in saved] == ["ferry notes.txt"]
    assert chips(app) == ["ferry notes.txt"] and window.attachment_bar.chips[0].summary["id"] == saved[0]["id"]
    # A new chat has none; coming back shows it again.
    with qtbot.waitSignal(session.chats.attachments.attachments_did_change, timeout=10_000):
        session.chats.new_chat()
    assert chips(app) == [] and not window.attachment_bar.isVisible()
    with qtbot.waitSignal(session.chats.attachments.attachments_did_change, timeout=10_000):
        session.chats.open(cid)
    qtbot.waitUntil(lambda: chips(app) == ["ferry notes.txt"], timeout=10_000)
    assert "ferry notes.txt (whole file), attached" in window.chat.last_answer().sources.text()  # kept with it
    # The export lists it (its text stays in the store).
    out = tmp_path / "chat.json"
    with qtbot.waitSignal(session.action_did_succeed, timeout=10_000):
        session.chats.export(cid, out, "json")
    exported = json.loads(out.read_text("utf-8"))
    assert [a["name"] for a in exported["attachments"]] == ["ferry notes.txt"]
    assert NOTES.strip() not in out.read_text("utf-8")


def test_attach_button_remove_and_add_to_library(
    qtbot: Any, app: Any, store_call: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Ferry\n\n" + NOTES, encoding="utf-8")
    window, session = app.window, app.session
    result = send(qtbot, app, "Hello")  # a saved chat: attaching saves at once
    cid = result["conversation_id"]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(notes)], ""))  # the OS dialog
    with qtbot.waitSignal(session.action_did_succeed, timeout=60_000) as said:
        window.attach_button.click()
    assert said.args[0] == "Attached notes.md to this chat"
    qtbot.waitUntil(lambda: chips(app) == ["notes.md"], timeout=10_000)
    assert [a["name"] for a in store_call(session, lambda s: s.attachments.list(cid))] == ["notes.md"]
    assert store_call(session, lambda s: s.db.execute("SELECT count(*) FROM documents").fetchone()[0]) == 0
    chip = window.attachment_bar.chips[0]
    with qtbot.waitSignal(session.documents.ingest_did_finish, timeout=120_000) as ingested:
        chip.library_action.trigger()
    assert ingested.args[0].counts()["added"] == 1
    assert store_call(session, lambda s: s.db.execute("SELECT count(*) FROM documents").fetchone()[0]) == 1
    with qtbot.waitSignal(session.chats.attachments.attachments_did_change, timeout=10_000):
        window.attachment_bar.chips[0].remove_button.click()
    assert chips(app) == [] and store_call(session, lambda s: s.attachments.list(cid)) == []
    # A file that cannot be read says why, in one sentence (the warning box answered), and attaches nothing.
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.StandardButton.Ok)
    with qtbot.waitSignal(session.action_did_fail, timeout=60_000) as failed:
        window.attach_files([str(tmp_path / "gone.txt")])
    assert failed.args[0].startswith("cannot attach gone.txt: cannot read")
    assert chips(app) == []
