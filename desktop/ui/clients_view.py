"""The apps allowed to use the local API, as the user sees them: name, scopes, last use; revoke one.

Shown under the local API switch in Settings. When the user has allowed tokenless Ollama access
(`hearth clients ollama-tokenless on`), a warning line says so, since any program on this computer can then
chat and embed without asking. The data comes from `storage.clients` and `storage.access_log` on the
store worker (`ChatSession.with_store`); this module only shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from desktop.ui import theme


@dataclass(frozen=True)
class ClientRow:
    name: str
    scopes: str
    last_use: str


@dataclass(frozen=True)
class ClientsSnapshot:
    clients: list[ClientRow]
    tokenless: bool
    tokenless_last_use: str


def load(store: Any) -> ClientsSnapshot:
    """On the store worker: the clients with their last use, and whether tokenless Ollama access is on."""
    from storage.clients import TOKENLESS_CLIENT, Clients

    registry = Clients(store.settings)
    last = store.access_log.last_use()
    rows = [ClientRow(c.name, ", ".join(sorted(c.scopes)), _when(last.get(c.name))) for c in registry.list()]
    return ClientsSnapshot(rows, registry.ollama_tokenless, _when(last.get(TOKENLESS_CLIENT)))


def revoke(name: str) -> Callable[[Any], ClientsSnapshot]:
    def task(store: Any) -> ClientsSnapshot:
        from storage.clients import Clients

        Clients(store.settings).revoke(name)
        return load(store)

    return task


def _when(stamp: str | None) -> str:
    return "never" if stamp is None else stamp[:16].replace("T", " ") + " UTC"


class ClientsPanel(QWidget):
    """`with_store(task, on_done)` runs a task on the store worker (ChatSession.with_store)."""

    client_did_revoke = Signal(str)

    def __init__(self, with_store: Callable[[Callable[[Any], Any], Callable[[Any], None]], None]) -> None:
        super().__init__()
        self._with_store = with_store
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE["s"])
        heading = QLabel("Apps with a token (`hearth clients add NAME --scopes ...`):")
        heading.setWordWrap(True)  # whole at any dialog width, not clipped
        layout.addWidget(heading)
        self.tree = QTreeWidget()
        self.tree.setObjectName("apiClients")
        self.tree.setAccessibleName("Apps with an API token")
        self.tree.setHeaderLabels(["Client", "Scopes", "Last use"])
        self.tree.setRootIsDecorated(False)
        self.tree.setMaximumHeight(140)
        layout.addWidget(self.tree)
        self.tokenless = QLabel()
        self.tokenless.setObjectName("tokenlessWarning")
        self.tokenless.setWordWrap(True)
        self.tokenless.setAccessibleName("Tokenless Ollama access warning")
        self.tokenless.setStyleSheet("color: #b9770e")
        self.tokenless.hide()
        layout.addWidget(self.tokenless)
        row = QHBoxLayout()
        row.addStretch(1)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.setObjectName("revokeClient")
        self.revoke_button.setAccessibleName("Revoke the selected app's token")
        self.revoke_button.setEnabled(False)
        self.revoke_button.clicked.connect(self._revoke_selected)
        self.tree.itemSelectionChanged.connect(lambda: self.revoke_button.setEnabled(bool(self.tree.selectedItems())))
        row.addWidget(self.revoke_button)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        self._with_store(load, self.show_clients)

    def show_clients(self, snapshot: ClientsSnapshot) -> None:
        self.tree.clear()
        for client in snapshot.clients:
            self.tree.addTopLevelItem(QTreeWidgetItem([client.name, client.scopes, client.last_use]))
        self.tokenless.setVisible(snapshot.tokenless)
        self.tokenless.setText(
            "Tokenless Ollama access is ON: any program on this computer may chat and embed with the base model "
            f"(never documents, chats or the personal model). Last use: {snapshot.tokenless_last_use}. "
            "Turn it off with `hearth clients ollama-tokenless off`."
        )

    def _revoke_selected(self) -> None:
        items = self.tree.selectedItems()
        if items:
            name = items[0].text(0)
            self._with_store(revoke(name), lambda snapshot: self._revoked(name, snapshot))

    def _revoked(self, name: str, snapshot: ClientsSnapshot) -> None:
        self.show_clients(snapshot)
        self.client_did_revoke.emit(name)
