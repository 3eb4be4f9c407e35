"""The documents view: drop files or folders to index them, watch progress with an ETA, see failures.

Ingestion (`storage.ingest.Ingester`) runs on the store worker, since it writes through the Store's
connection; progress snapshots come back as signals. Each failed file is listed with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    return f" · about {seconds // 60} min {seconds % 60} s left" if seconds >= 60 else f" · about {seconds} s left"


class DocumentsView(QWidget):
    documents_will_add = Signal(list)  # paths
    document_will_forget = Signal(str)
    ingest_will_stop = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("documentsView")
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        hint = QLabel(
            "<b>Your documents</b><br>Drop files or folders here. They are indexed into the encrypted store, "
            "and answers with “Use my documents” cite them."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        buttons = QHBoxLayout()
        self.add_files = QPushButton("Add files…")
        self.add_files.clicked.connect(self._pick_files)
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.clicked.connect(self._pick_folder)
        self.forget_button = QPushButton("Forget selected")
        self.forget_button.clicked.connect(self._forget)
        buttons.addWidget(self.add_files)
        buttons.addWidget(self.add_folder)
        buttons.addStretch(1)
        buttons.addWidget(self.forget_button)
        layout.addLayout(buttons)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress_label = QLabel()
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.ingest_will_stop.emit)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.stop_button)
        layout.addLayout(progress_row)
        layout.addWidget(self.progress_label)
        self.files = QTreeWidget()
        self.files.setObjectName("documentList")
        self.files.setAccessibleName("Indexed documents")
        self.files.setHeaderLabels(["File", "Kind", "Chunks", "Embedded", "Status"])
        self.files.setRootIsDecorated(False)
        self.files.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.files, 3)
        self.failures_title = QLabel("<b>Could not index</b>")
        layout.addWidget(self.failures_title)
        self.failures = QListWidget()
        self.failures.setObjectName("documentFailures")
        layout.addWidget(self.failures, 1)
        self.set_busy(False)
        self._show_failures([])

    # -- input ----------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.documents_will_add.emit(paths)

    def _pick_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add documents", str(Path.home()))
        if names:
            self.documents_will_add.emit(names)

    def _pick_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Add a folder", str(Path.home()))
        if name:
            self.documents_will_add.emit([name])

    def _forget(self) -> None:
        for item in self.files.selectedItems():
            self.document_will_forget.emit(item.data(0, Qt.ItemDataRole.UserRole))

    # -- output ---------------------------------------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy)
        self.add_files.setEnabled(not busy)
        self.add_folder.setEnabled(not busy)
        self.forget_button.setEnabled(not busy)
        if busy:
            self.progress.setRange(0, 0)
            self.progress_label.setText("Looking for files…")

    def show_progress(self, progress: Any) -> None:
        what = "Indexing files" if progress.phase == "index" else "Embedding passages"
        self.progress.setRange(0, max(progress.total, 1))
        self.progress.setValue(progress.done)
        current = f" · {progress.current}" if progress.current else ""
        self.progress_label.setText(f"{what}: {progress.done}/{progress.total}{current}{_eta(progress.eta_s)}")

    def show_summary(self, summary: Any) -> None:
        self.set_busy(False)
        counts = summary.counts()
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        state = "Stopped" if summary.cancelled else "Done"
        self.progress_label.setText(f"{state}: {', '.join(parts) or 'nothing to do'} in {summary.seconds:.1f} s")
        self._show_failures([o for o in summary.outcomes if o.status == "failed"])

    def _show_failures(self, failed: list[Any]) -> None:
        self.failures.clear()
        for outcome in failed:
            self.failures.addItem(f"{Path(outcome.path).name}: {outcome.reason}")
        self.failures.setVisible(bool(failed))
        self.failures_title.setVisible(bool(failed))

    def show_documents(self, records: list[Any]) -> None:
        self.files.clear()
        for record in records:
            columns = [record.path, record.kind, str(record.chunks), str(record.embedded), record.status]
            item = QTreeWidgetItem(columns)
            item.setData(0, Qt.ItemDataRole.UserRole, record.path)
            item.setToolTip(0, record.path)
            self.files.addTopLevelItem(item)

    def paths(self) -> list[str]:
        return [self.files.topLevelItem(i).text(0) for i in range(self.files.topLevelItemCount())]

    def failure_texts(self) -> list[str]:
        return [self.failures.item(i).text() for i in range(self.failures.count())]
