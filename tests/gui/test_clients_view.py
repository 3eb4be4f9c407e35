"""The API clients list in Settings: names, scopes, last use, revoke, and the tokenless-Ollama warning."""

from __future__ import annotations

from typing import Any

from storage.clients import Clients


def _open_settings(app: Any, qtbot: Any) -> Any:
    app.window.open_settings()  # the dialog opens once the store worker says how the key is held
    qtbot.waitUntil(lambda: hasattr(app.window, "clients_panel"))
    return app.window.clients_panel


def test_settings_list_clients_with_last_use_and_revoke_one(app: Any, qtbot: Any, store_call: Any) -> None:
    def prepare(store: Any) -> None:
        Clients(store.settings).add("editor", frozenset({"chat"}))
        Clients(store.settings).add("claude", frozenset({"documents", "chats"}))
        store.access_log.record("editor", "POST /api/chat")

    store_call(app.session, prepare)
    panel = _open_settings(app, qtbot)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2)
    rows = {panel.tree.topLevelItem(i).text(0): panel.tree.topLevelItem(i) for i in range(2)}
    assert rows["claude"].text(1) == "chats, documents" and rows["claude"].text(2) == "never"
    assert rows["editor"].text(2).endswith("UTC")
    assert panel.tokenless.isHidden()  # off by default, so nothing to warn about

    panel.tree.setCurrentItem(rows["editor"])
    with qtbot.waitSignal(panel.client_did_revoke, timeout=10_000):
        panel.revoke_button.click()
    assert [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())] == ["claude"]
    assert [c.name for c in store_call(app.session, lambda s: Clients(s.settings).list())] == ["claude"]


def test_the_tokenless_ollama_opt_in_is_shown_when_on(app: Any, qtbot: Any, store_call: Any) -> None:
    store_call(app.session, lambda store: Clients(store.settings).set_ollama_tokenless(True))
    panel = _open_settings(app, qtbot)
    qtbot.waitUntil(lambda: not panel.tokenless.isHidden())
    assert "Tokenless Ollama access is ON" in panel.tokenless.text()
