"""The Personalize tab: start learning from the user's data, watch it, and manage the adapter versions.

The view only shows and asks: training runs in its own low-priority process (`personalize.job`), whose
status `ChatSession` polls and forwards as `personalize_did_progress`; the registry and the live model are
reached through the session's workers. The loss curve is a small painted polyline, no charting dependency.
Below the versions, `ProofPanel` shows the selected version's proof (`personalize.proof`): gain on unseen
text, drift on general text, tokens, time, and three held-out passages continued by the model before and
after, side by side.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

STATE_TEXT = {
    "idle": "Hearth has not learned from your data yet.",
    "starting": "Starting…",
    "loading": "Reading your data and loading the model…",
    "training": "Learning from your documents and chats",
    "evaluating": "Checking the new version on text it has not seen…",
    "activated": "Done: the new version is better and is now used in chat.",
    "kept": "Done: the new version was not better than the one in use, so it was kept but not switched to.",
    "refused": "Done, but the new version forgot too much of how to answer general questions, so it was kept "
    "but not switched to.",
    "paused": "Paused. Resume continues where it stopped.",
    "cancelled": "Cancelled.",
    "interrupted": "Interrupted (the computer slept or the app closed). Resume continues from the last save.",
    "failed": "Could not personalize.",
}
COLUMNS = ("", "Version", "Created", "Perplexity before", "after", "Gain", "Drift", "Tokens learned", "Time")
SAMPLE_COLUMNS = ("Your unseen text begins…", "…and you wrote", "Before (base model)", "After (this version)")


class LossCurve(QWidget):
    """The training loss so far, one point per step, scaled to fit."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []
        self.setMinimumHeight(120)
        self.setToolTip("Training loss: lower means the model predicts your text better")

    def add(self, step: int, loss: float) -> None:
        if self.points and step <= self.points[-1][0]:
            if step < self.points[-1][0]:  # a new run (or a resume from an earlier checkpoint)
                self.points.clear()
            else:
                return
        self.points.append((step, loss))
        self.update()

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        rect = self.rect().adjusted(8, 8, -8, -8)
        painter.fillRect(self.rect(), palette.base())
        painter.setPen(QPen(palette.mid().color(), 1))
        painter.drawRect(rect)
        if len(self.points) < 2:
            painter.setPen(palette.placeholderText().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "The loss curve appears while Hearth learns")
            return
        frame, rect = rect, rect.adjusted(4, 22, -4, -22)  # room for the labels above and below the line
        steps = [p[0] for p in self.points]
        losses = [p[1] for p in self.points]
        low, high = min(losses), max(losses)
        span_x = max(steps[-1] - steps[0], 1)
        span_y = max(high - low, 1e-6)
        line = QPolygonF(
            [
                QPointF(
                    rect.left() + rect.width() * (s - steps[0]) / span_x,
                    rect.bottom() - rect.height() * (loss - low) / span_y,
                )
                for s, loss in self.points
            ]
        )
        painter.setPen(QPen(palette.highlight().color(), 2))
        painter.drawPolyline(line)
        painter.setPen(palette.text().color())
        painter.drawText(frame.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignTop, f"loss {high:.2f}")
        painter.drawText(
            frame.adjusted(6, 4, -6, -4),
            Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight,
            f"{losses[-1]:.2f} at step {steps[-1]}",
        )


class ProofPanel(QFrame):
    """The selected version's proof: one summary line, warnings, and the before/after samples side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("proofPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        self.summary = QLabel("")
        self.summary.setObjectName("proofSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.samples = QTableWidget(0, len(SAMPLE_COLUMNS))
        self.samples.setObjectName("proofSamples")
        self.samples.setAccessibleName("Sample answers, before and after")
        self.samples.setHorizontalHeaderLabels(SAMPLE_COLUMNS)
        self.samples.verticalHeader().setVisible(False)
        self.samples.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.samples.setWordWrap(True)
        self.samples.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.samples.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.samples.setToolTip("The model continues passages of your text it never trained on, before and after")
        layout.addWidget(self.samples, 1)
        self.show_record(None)

    def show_record(self, record: Any) -> None:
        from personalize import proof

        if record is None:
            self.summary.setText("Select a version to see what it changed.")
            self.samples.setRowCount(0)
            return
        lines = [f"<b>{record.id}</b>: {proof.summary(record)}."]
        if record.refused:
            lines.append(f"Not switched to automatically: {record.refused}.")
        lines += [f"⚠ {warning}" for warning in proof.warnings(record)]
        self.summary.setText("<br>".join(_escape(line) if i else line for i, line in enumerate(lines)))
        self.samples.setRowCount(len(record.samples))
        for row, sample in enumerate(record.samples):
            cells = ("…" + _one_line(sample["prompt"])[-160:], sample["truth"], sample["base"], sample["adapter"])
            for column, text in enumerate(cells):
                self.samples.setItem(row, column, QTableWidgetItem(_one_line(text)))


class PersonalizeView(QWidget):
    personalize_will_start = Signal()
    personalize_will_pause = Signal()
    personalize_will_cancel = Signal()
    adapter_will_activate = Signal(object)  # an adapter id, or None to turn adapters off
    adapter_will_rollback = Signal()
    adapter_will_delete = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Any] = []
        self.state = "idle"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        intro = QLabel(
            "Hearth can learn your style and vocabulary from your documents and chats. It trains a small "
            "add-on (an adapter) on this computer, in the background, and only switches to it if it predicts "
            "your unseen text better. Nothing leaves the machine."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        controls = QHBoxLayout()
        self.start_button = QPushButton("Personalize")
        self.start_button.setObjectName("personalizeButton")
        self.start_button.setToolTip("Start learning from your data in a low-priority background process")
        self.start_button.clicked.connect(self.personalize_will_start.emit)
        controls.addWidget(self.start_button)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.personalize_will_pause.emit)
        controls.addWidget(self.pause_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop and throw this run's progress away")
        self.cancel_button.clicked.connect(self.personalize_will_cancel.emit)
        controls.addWidget(self.cancel_button)
        controls.addStretch(1)
        layout.addLayout(controls)

        self.state_label = QLabel(STATE_TEXT["idle"])
        self.state_label.setObjectName("personalizeState")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.state_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        self.detail = QLabel("")
        layout.addWidget(self.detail)
        self.curve = LossCurve()
        layout.addWidget(self.curve, 1)

        layout.addWidget(QLabel("<b>Versions</b> (held-out perplexity: lower is better)"))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("adapterTable")
        self.table.setAccessibleName("Adapter versions")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        self.proof = ProofPanel()
        layout.addWidget(self.proof, 1)

        actions = QHBoxLayout()
        self.activate_button = QPushButton("Use this version")
        self.activate_button.clicked.connect(lambda: self._emit_selected(self.adapter_will_activate.emit))
        actions.addWidget(self.activate_button)
        self.off_button = QPushButton("Turn off")
        self.off_button.setToolTip("Chat with the base model")
        self.off_button.clicked.connect(lambda: self.adapter_will_activate.emit(None))
        actions.addWidget(self.off_button)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Go back to the version that was in use before the last switch")
        self.rollback_button.clicked.connect(self.adapter_will_rollback.emit)
        actions.addWidget(self.rollback_button)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(lambda: self._emit_selected(self.adapter_will_delete.emit))
        actions.addWidget(self.delete_button)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.show_status({"state": "idle"})
        self._update_buttons()

    # -- job ------------------------------------------------------------------------------------------

    def show_status(self, status: dict[str, Any]) -> None:
        state = str(status.get("state", "idle"))
        if state in ("starting", "loading") and self.state not in ("starting", "loading", "training"):
            self.curve.clear()  # a new run begins
        self.state = state
        live = state in ("starting", "loading", "training", "evaluating")
        text = STATE_TEXT.get(state, state)
        if status.get("error"):
            text = f"{text} {status['error']}"
        if state in ("activated", "kept", "refused") and status.get("base_ppl") and status.get("adapter_ppl"):
            text += f" Perplexity {status['base_ppl']:.2f} → {status['adapter_ppl']:.2f}"
            text += f", drift {status['drift']:.3f}x." if status.get("drift") is not None else "."
        self.state_label.setText(text)
        step, max_steps = status.get("step"), status.get("max_steps")
        if state == "training" and max_steps:
            self.progress.setRange(0, int(max_steps))
            self.progress.setValue(int(step or 0))
            self.progress.setFormat(f"step %v of %m · time left {_eta(status.get('eta_s'))}")
        elif live:
            self.progress.setRange(0, 0)  # busy: loading or evaluating has no steps to count
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if state in ("activated", "kept", "refused") else 0)
            self.progress.setFormat("")
        if state == "training":
            parts = []
            if status.get("loss") is not None:
                parts.append(f"loss {status['loss']:.3f}")
                self.curve.add(int(step or 0), float(status["loss"]))
            if status.get("tokens_per_s"):
                parts.append(f"{status['tokens_per_s']:.0f} tokens/s")
            parts.append(f"time left {_eta(status.get('eta_s'))}")
            self.detail.setText(" · ".join(parts))
        elif not live:
            self.detail.setText("")
        self.start_button.setEnabled(not live)
        self.start_button.setText("Resume" if state in ("paused", "interrupted") else "Personalize")
        self.pause_button.setEnabled(state == "training")
        self.cancel_button.setEnabled(live or state in ("paused", "interrupted"))

    # -- versions -------------------------------------------------------------------------------------

    def show_adapters(self, records: list[Any]) -> None:
        selected = self.selected_id()
        self.records = list(reversed(records))  # newest first
        self.table.setRowCount(len(self.records))
        for row, r in enumerate(self.records):
            cells = (
                "● in use" if r.active else "",
                r.id,
                r.created[:16].replace("T", " "),
                f"{r.base_ppl:.2f}",
                f"{r.adapter_ppl:.2f}",
                f"{100 * r.improvement:+.1f}%",
                f"{r.drift:.3f}x" if r.drift is not None else "-",
                f"{r.tokens_trained:,}",
                f"{r.seconds / 60:.1f} min" if r.seconds is not None else "-",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if r.active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
            if r.id == selected:
                self.table.selectRow(row)
        if selected is None and self.records:
            self.table.selectRow(0)  # the newest version's proof is what the user wants to see first
        self._update_buttons()

    def select(self, adapter_id: str) -> None:
        for row, r in enumerate(self.records):
            if r.id == adapter_id:
                self.table.selectRow(row)

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.records):
            return None
        return str(self.records[rows[0].row()].id)

    def _emit_selected(self, emit: Any) -> None:
        adapter_id = self.selected_id()
        if adapter_id is not None:
            emit(adapter_id)

    def _update_buttons(self) -> None:
        selected = self.selected_id()
        self.proof.show_record(next((r for r in self.records if r.id == selected), None))
        active = next((r.id for r in self.records if r.active), None)
        self.activate_button.setEnabled(selected is not None and selected != active)
        self.delete_button.setEnabled(selected is not None)
        self.off_button.setEnabled(active is not None)
        self.rollback_button.setEnabled(bool(self.records))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _eta(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "estimating…"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
