"""Dropping files onto the documents view: indexed files are listed, a failing file shows its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

INGEST_TIMEOUT_MS = 300_000  # the first run loads the embedding model


def drop(widget: Any, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)


def test_drop_lists_documents_and_explains_failures(qtbot: Any, app: Any, tmp_path: Path) -> None:
    good = tmp_path / "notes.md"
    good.write_text("# Garden\n\nThe tomatoes need water every morning in July.\n", "utf-8")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    view = app.window.documents
    app.window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(app.session.documents.ingest_did_finish, timeout=INGEST_TIMEOUT_MS) as finished:
        drop(view, [good, bad])
    summary = finished.args[0]
    assert summary.counts()["added"] == 1 and summary.counts()["failed"] == 1
    qtbot.waitUntil(lambda: view.paths() == [str(bad), str(good)])  # failed files are listed too, never hidden
    assert view.files.topLevelItem(0).text(4).startswith("failed: ")
    assert view.files.topLevelItem(1).text(4) == "indexed"
    failures = view.failure_texts()
    assert len(failures) == 1 and failures[0].startswith("broken.pdf: ") and len(failures[0]) > len("broken.pdf: ")
    assert view.failures.isVisible()
    with qtbot.waitSignal(app.session.documents.documents_did_load, timeout=30_000):
        view.files.topLevelItem(1).setSelected(True)
        view.forget_button.click()
    assert view.paths() == [str(bad)]


def test_a_dropped_folder_is_watched_while_the_window_runs(qtbot: Any, app: Any, tmp_path: Path) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "soup.txt").write_text("Leek soup wants a pinch of nutmeg.\n", "utf-8")
    view = app.window.documents
    with qtbot.waitSignal(app.session.documents.ingest_did_finish, timeout=INGEST_TIMEOUT_MS):
        drop(view, [folder])
    qtbot.waitUntil(lambda: view.paths() == [str(folder / "soup.txt")], timeout=30_000)
    (folder / "bread.md").write_text("# Bread\n\nRye dough rests overnight in the fridge.\n", "utf-8")
    (folder / "soup.txt").unlink()
    # The window's watcher (its own thread and connection) indexes the new file and forgets the deleted one.
    qtbot.waitUntil(lambda: view.paths() == [str(folder / "bread.md")], timeout=120_000)
    qtbot.waitUntil(lambda: view.files.topLevelItem(0).text(4) == "indexed", timeout=120_000)
