"""The model picker: the models Hearth has, the ones other apps left on this computer, and a catalog to
download from, each one click away.

The slow parts (reading model headers across other apps' folders, hashing a 4 GB file to register it in
place, a download) run on a background thread and report back through queued signals; the GUI thread only
draws. It talks to the core alone (desktop.engine.models, model_scan, model_pull, model_fit), never to the
session: the window connects `model_will_use` to the session, which loads the model. A model that would not
fit in memory is refused here before anything loads, with the numbers; the engine's own refusal is shown
through `show_error`. Used by the Models tab and by the first-run onboarding.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import theme
from storage.errors import KnownError

log = logging.getLogger(__name__)


def sentence(message: str) -> str:
    """A core error ('the server sent ...; run again') as the window shows it: a capital (unless it starts
    with a name such as 'qwen2.5-0.5b needs ...') and one full stop."""
    message = message.strip().rstrip(".")
    first = message.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        message = message[:1].upper() + message[1:]
    return message + "." if message else ""


def gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def progress_text(done: int, total: int, speed: float) -> str:
    """'123.4 of 491.0 MB · 45.2 MB/s · about 8 s left'."""
    parts = [f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"]
    if speed > 0:
        parts.append(f"{speed / 1e6:.1f} MB/s")
        if total > done:
            left = (total - done) / speed
            parts.append(f"about {left:.0f} s left" if left < 120 else f"about {left / 60:.0f} min left")
    return " · ".join(parts)


class BackgroundTask(QObject):
    """fn(report) on a daemon thread; `report(value)` and the outcome come back as queued signals.

    A KnownError reaches `task_did_fail` as its sentence; anything else is a bug, logged by type and frames
    (never its message: it may quote a path or a document) and reported as an internal error."""

    task_did_progress = Signal(object)
    task_did_finish = Signal(object)
    task_did_fail = Signal(str)

    def start(self, fn: Callable[[Callable[[Any], None]], Any]) -> None:
        threading.Thread(target=self._run, args=(fn,), name="hearth-models", daemon=True).start()

    def _run(self, fn: Callable[[Callable[[Any], None]], Any]) -> None:
        try:
            value = fn(lambda progress: self._emit(self.task_did_progress, progress))
        except KnownError as exc:
            self._emit(self.task_did_fail, str(exc))
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("model picker task failed with %s\n%s", type(exc).__name__, frames)
            self._emit(self.task_did_fail, f"internal error ({type(exc).__name__}); see the log")
        else:
            self._emit(self.task_did_finish, value)

    @staticmethod
    def _emit(signal: Any, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the window closed while this ran: nobody is left to tell
            signal.emit(value)


@dataclass
class Snapshot:
    """What the picker shows, gathered off the GUI thread."""

    registered: list[dict[str, Any]] = field(default_factory=list)  # name, detail, speed, path
    found: list[Any] = field(default_factory=list)  # desktop.engine.model_scan.FoundModel
    catalog: list[Any] = field(default_factory=list)  # desktop.engine.model_pull.CatalogEntry
    best: str | None = None  # the catalog entry that fits this machine best
    available: int = 0  # bytes of memory available now
    active: str = ""


def gather() -> Snapshot:
    """Headers only: nothing is loaded or hashed, no socket is opened."""
    from desktop.engine import model_fit, model_pull, model_scan, models
    from desktop.engine.gguf_file import inspect

    snap = Snapshot(available=model_fit.available_memory(), catalog=model_pull.catalog())
    best = model_pull.best_fit(snap.available)
    snap.best = best.name if best is not None else None
    try:
        snap.active = models.active_model().name
    except KnownError:
        snap.active = models.BUNDLED_NAME
    for model in models.list_models():
        try:
            info = inspect(model.path)
            detail = f"{info.architecture} {info.file_type}, {gb(info.size_bytes)}"
        except KnownError as exc:  # moved, deleted or damaged since it was registered
            detail = sentence(str(exc))
        speed = models.measured_speed(model) if model.path.exists() else None
        snap.registered.append({"name": model.name, "detail": detail, "speed": speed, "path": str(model.path)})
    snap.found = [m for m in model_scan.scan() if m.chat]
    return snap


class ModelPicker(QWidget):
    """Three lists: On Hearth (Use), Found on this computer (Use: registered in place), Download."""

    model_will_use = Signal(str)  # a registered model's name: the window has the session load it
    picker_did_refresh = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.snapshot = Snapshot()
        self.active = ""
        self._downloading: str | None = None
        self._cancel = threading.Event()
        self._tasks: set[BackgroundTask] = set()  # alive until they report
        space = theme.SPACE
        column = QVBoxLayout(self)
        column.setContentsMargins(space["l"], space["m"], space["l"], space["m"])
        column.setSpacing(space["s"])
        self.registered = self._list(column, "On Hearth", ["Model", "Details", "Speed", ""])
        self.found = self._list(
            column,
            "Found on this computer",
            ["Model", "From", "Architecture", "Quantization", "Size", "Memory", "Personalizable", ""],
        )
        self.found_note = QLabel("Looking for models other apps downloaded…")
        self.found_note.setObjectName("messageNote")
        column.addWidget(self.found_note)
        self.downloads = self._list(column, "Download", ["Model", "Size", "Memory", "License", ""])
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Download progress")
        self.progress.setTextVisible(False)
        progress_row.addWidget(self.progress, 1)
        self.progress_label = QLabel("")
        progress_row.addWidget(self.progress_label)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setAccessibleName("Cancel the download")
        self.cancel_button.clicked.connect(self.cancel_download)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        self.progress_box.hide()
        column.addWidget(self.progress_box)
        self.message = QLabel("")
        self.message.setObjectName("pickerMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.message)

    def _list(self, column: QVBoxLayout, heading: str, headers: list[str]) -> QTreeWidget:
        label = QLabel(heading)
        theme.set_type(label, "title", bold=True)
        column.addWidget(label)
        tree = QTreeWidget()
        tree.setAccessibleName(heading)
        tree.setRootIsDecorated(False)
        tree.setHeaderLabels(headers)
        tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        tree.header().setStretchLastSection(False)
        tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(headers)):
            tree.header().setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        column.addWidget(tree, 1)
        return tree

    # -- data -----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Gather again on a background thread (scan, registry, measured speeds); redraw when it reports."""
        self._run(lambda _report: gather(), self._show)

    def set_active(self, name: str) -> None:
        """The model the session has loaded now (its row says "In use")."""
        self.active = name
        self._show(self.snapshot)

    def show_error(self, message: str) -> None:
        """A sentence under the lists: the engine's refusal to load, a failed registration or download."""
        self._say(sentence(message), "error")

    def _say(self, message: str, role: str = "") -> None:
        self.message.setProperty("role", role)
        self.message.style().polish(self.message)  # a dynamic property restyles only when polished again
        self.message.setText(message)

    def _show(self, snap: Snapshot) -> None:
        self.snapshot = snap
        active = self.active or snap.active
        self.registered.clear()
        for row in snap.registered:
            speed = f"{row['speed']:.1f} tok/s" if row["speed"] else "not run yet"
            item = QTreeWidgetItem([row["name"], row["detail"], speed, ""])
            self.registered.addTopLevelItem(item)
            in_use = row["name"] == active
            self._button(self.registered, item, "In use" if in_use else "Use", not in_use, row["name"], self._use)
        registered_paths = {str(Path(r["path"]).resolve()) for r in snap.registered}
        self.found.clear()
        for m in snap.found:
            known = str(Path(m.path).resolve()) in registered_paths
            cells = [m.name, m.source, m.architecture, m.quantization, gb(m.size_bytes), gb(m.ram_bytes)]
            item = QTreeWidgetItem([*cells, "yes" if m.personalization else "no", ""])
            item.setToolTip(0, m.path)
            self.found.addTopLevelItem(item)
            self._button(self.found, item, "On Hearth" if known else "Use", not known, m, self._register)
        self.found_note.setText(
            f"{len(snap.found)} chat model{'s' if len(snap.found) != 1 else ''} found; using one references "
            "the file where it is (nothing is copied)."
            if snap.found
            else "No models from Ollama, LM Studio, GPT4All, Jan, Hugging Face or llama.cpp on this computer."
        )
        self.downloads.clear()
        for e in snap.catalog:
            name = f"{e.name}  (fits this computer best)" if e.name == snap.best else e.name
            item = QTreeWidgetItem([name, gb(e.size_bytes), f"{e.ram_gb:.1f} GB", e.license, ""])
            item.setToolTip(0, f"{e.repo} · {e.file}")
            if e.name == snap.best:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
            self.downloads.addTopLevelItem(item)
            label = "Downloading…" if e.name == self._downloading else "Download"
            self._button(self.downloads, item, label, self._downloading is None, e, self._download)
        self.picker_did_refresh.emit()

    def _button(
        self, tree: QTreeWidget, item: QTreeWidgetItem, label: str, enabled: bool, value: Any, action: Callable
    ) -> None:
        button = QPushButton(label)
        button.setEnabled(enabled)
        button.setAccessibleName(f"{label} {item.text(0)}")
        button.clicked.connect(lambda: action(value))
        tree.setItemWidget(item, tree.columnCount() - 1, button)

    def button_for(self, tree: QTreeWidget, name: str) -> QPushButton:
        """The action button on the row whose first column starts with name (tests, accessibility tools)."""
        for i in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(i)
            if item.text(0).split("  (")[0] == name:
                widget = tree.itemWidget(item, tree.columnCount() - 1)
                assert isinstance(widget, QPushButton)
                return widget
        raise LookupError(name)

    # -- actions --------------------------------------------------------------------------------------

    def _use(self, name: str) -> None:
        """A registered model: check it would fit, then have the window load it."""

        def check(_report: Callable[[Any], None]) -> str:
            from desktop.engine import model_fit, models

            model = models.find(name)
            model_fit.check_fits(models.check_chat_model(models.require(model)), model_fit.DEFAULT_N_CTX)
            return name

        self._say(f"Checking {name}…")
        self._run(check, self._chosen)

    def _register(self, found: Any) -> None:
        """A model another app downloaded: refuse it plainly if it would not fit, else register it in place
        (hashing it takes a few seconds per GB, on the background thread) and use it."""

        def register(_report: Callable[[Any], None]) -> str:
            from desktop.engine import model_fit, models
            from desktop.engine.model_scan import registry_name

            info = models.check_chat_model(Path(found.path))
            model_fit.check_fits(info, model_fit.DEFAULT_N_CTX)
            model, _ = models.add(Path(found.path), registry_name(found.name), source=found.source)
            return model.name

        self._say(f"Registering {found.name} in place…")
        self._run(register, self._chosen)

    def _chosen(self, name: str) -> None:
        self._say(f"Loading {name}…")
        self.active = name
        self.model_will_use.emit(name)
        self.refresh()

    def _download(self, entry: Any) -> None:
        """Fetch a catalog model (resuming a partial one), verify its sha256, register it and use it; one
        that would not fit in the memory available now is refused before the first byte."""
        need, free = int(entry.ram_gb * 1e9), self.snapshot.available
        if free and need > free:
            self.show_error(
                f"{entry.name} needs about {gb(need)} of memory, {gb(free)} free; "
                "close other programs or choose a smaller model"
            )
            return
        self._downloading = entry.name
        self._cancel.clear()
        self.progress.setRange(0, 0)
        self.progress_label.setText("Connecting…")
        self.progress_box.show()
        self.cancel_button.setEnabled(True)
        self._say(f"Downloading {entry.name} ({gb(entry.size_bytes)}); it is verified before it is used.")
        self._show(self.snapshot)
        last = [0.0]

        def fetch(report: Callable[[Any], None]) -> str:
            from desktop.engine import model_pull, models

            def progress(done: int, total: int, speed: float) -> None:
                now = time.monotonic()
                if now - last[0] >= 0.1 or done == total:  # the core reports every 0.25 s; no flood either way
                    last[0] = now
                    report((done, total, speed))

            spec = model_pull.resolve(entry.name)
            path = model_pull.pull(spec, progress=progress, should_stop=self._cancel.is_set)
            model, _ = models.add(path, spec.name, source="pull")
            return model.name

        self._run(fetch, self._downloaded, self._on_progress, self._download_failed)

    def _on_progress(self, value: tuple[int, int, float]) -> None:
        done, total, speed = value
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
        self.progress_label.setText(progress_text(done, total, speed))

    def cancel_download(self) -> None:
        """Stops between two chunks; the partial file is kept, and Download resumes it."""
        self._cancel.set()
        self.cancel_button.setEnabled(False)

    def shutdown(self) -> None:
        """The window is closing: a download stops between two chunks, its partial file kept for later."""
        self._cancel.set()

    def _downloaded(self, name: str) -> None:
        self._downloading = None
        self.progress_box.hide()
        self._chosen(name)

    def _download_failed(self, message: str) -> None:
        name, self._downloading = self._downloading, None
        self.progress_box.hide()
        if self._cancel.is_set():
            self._say(f"Download of {name} paused; click Download to resume where it stopped.")
        else:
            self.show_error(message)
        self._show(self.snapshot)

    def _run(
        self,
        fn: Callable[[Callable[[Any], None]], Any],
        on_done: Callable[[Any], None],
        on_progress: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        task = BackgroundTask(self)
        self._tasks.add(task)
        task.task_did_finish.connect(on_done)
        task.task_did_fail.connect(on_error or self.show_error)
        if on_progress is not None:
            task.task_did_progress.connect(on_progress)
        task.task_did_finish.connect(lambda _: self._tasks.discard(task))
        task.task_did_fail.connect(lambda _: self._tasks.discard(task))
        task.start(fn)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)
