"""The Personalize tab over the real store, the real bundled model and the real background job.

Adapters here are real GGUF LoRA adapters for the bundled model, made by `export_gguf.to_gguf` from small
random LoRA weights on one layer (training one takes minutes; what these tests check is the switching, not
what was learned). The job tests start the real `python -m personalize.job` process.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LOAD_TIMEOUT_MS = 60_000
JOB_TIMEOUT_MS = 180_000  # the job process imports torch and loads the base model on a shared 2-core machine
_spec = importlib.util.spec_from_file_location("adapters", Path(__file__).parents[1] / "fixtures" / "adapters.py")
assert _spec is not None and _spec.loader is not None
_adapters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_adapters)
make_adapter = _adapters.make_adapter
SMALL_JOB = json.dumps({"max_steps": 500, "seq_len": 64, "batch_size": 1, "threads": 1, "warmup_steps": 1})


@pytest.fixture
def no_job_left() -> Iterator[None]:
    """A failing job test must not leave a trainer running on the shared machine: kill it afterwards."""
    import signal

    from personalize import job

    yield
    live = job.running()
    if live is not None:
        os.kill(int(live["pid"]), signal.SIGKILL)


def add_adapters(app: Any, store_call: Any, count: int) -> list[str]:
    return [store_call(app.session, lambda s, i=i: make_adapter(s, i + 1)) for i in range(count)]


def live_adapter(app: Any) -> str | None:
    return app.session.engine_worker.call(lambda: app.services.engine().adapter_id)


def test_versions_are_listed_and_switch_the_live_model(
    qtbot: Any, app: Any, store_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    from personalize.registry import Registry

    first, second = add_adapters(app, store_call, 2)
    view = app.window.personalize
    app.window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(app.session.personalization.adapters_did_load, timeout=30_000):
        app.session.personalization.load()
    assert [r.id for r in view.records] == [second, first]  # newest first
    assert view.table.item(0, 3).text() == "20.00" and view.table.item(0, 4).text() == "18.00"
    assert view.table.item(0, 5).text() == "+10.0%"
    picker = app.window.adapter_picker
    assert [picker.itemData(i) for i in range(picker.count())] == [None, second, first]

    def switch(action: Any, expected: str | None) -> None:
        action()
        qtbot.waitUntil(lambda: live_adapter(app) == expected, timeout=30_000)
        qtbot.waitUntil(lambda: store_call(app.session, lambda s: Registry(s).active_id()) == expected)
        qtbot.waitUntil(lambda: picker.currentData() == expected)
        qtbot.waitUntil(lambda: [r.id for r in view.records if r.active] == ([expected] if expected else []))

    view.select(first)
    switch(view.activate_button.click, first)
    assert view.table.item(1, 0).text().endswith("in use")
    picker.setCurrentIndex(picker.findData(second))
    switch(lambda: picker.activated.emit(picker.currentIndex()), second)
    switch(view.rollback_button.click, first)
    switch(view.off_button.click, None)

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    view.select(second)
    with qtbot.waitSignal(app.session.personalization.adapters_did_load, timeout=30_000):
        view.delete_button.click()
    assert [r.id for r in view.records] == [first]
    assert store_call(app.session, lambda s: [r.id for r in Registry(s).list()]) == [first]


def test_each_version_shows_its_proof_side_by_side(qtbot: Any, app: Any, store_call: Any) -> None:
    """Gain, drift, tokens and time per version; the selected version's samples as four columns per passage."""
    samples = [
        {
            "prompt": f"Ledger of day {i}: Quillimor",
            "truth": " polished 4 moonsalt",
            "base": " went home.",
            "adapter": " weighed 7 brindlewhorls",
        }
        for i in range(3)
    ]
    refused = "it changed the model's general answers too much (drift 1.50x, limit 1.10x)"
    good = store_call(app.session, lambda s: make_adapter(s, 1, drift=1.012, seconds=150.0, samples=samples))
    bad = store_call(app.session, lambda s: make_adapter(s, 2, drift=1.5, seconds=60.0, refused=refused))
    view = app.window.personalize
    app.window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(app.session.personalization.adapters_did_load, timeout=30_000):
        app.session.personalization.load()
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    row = {r.id: i for i, r in enumerate(view.records)}
    cell = {name: headers.index(name) for name in ("Gain", "Drift", "Tokens learned", "Time")}
    assert view.table.item(row[good], cell["Drift"]).text() == "1.012x"
    assert view.table.item(row[good], cell["Time"]).text() == "2.5 min"
    assert view.table.item(row[good], cell["Tokens learned"]).text() == "1,000"
    assert view.table.item(row[bad], cell["Drift"]).text() == "1.500x"

    assert view.selected_id() == bad  # the newest is shown first
    assert "drift 1.500x on general text" in view.proof.summary.text()
    assert "Not switched to automatically" in view.proof.summary.text()
    assert view.proof.samples.rowCount() == 0
    view.select(good)
    assert "gain +5.0% on unseen text" in view.proof.summary.text()
    assert "2.5 min" in view.proof.summary.text()
    table = view.proof.samples
    assert table.rowCount() == 3 and table.columnCount() == 4
    assert [table.item(2, c).text() for c in range(4)] == [
        "…Ledger of day 2: Quillimor",
        "polished 4 moonsalt",
        "went home.",
        "weighed 7 brindlewhorls",
    ]


def test_the_adapter_stays_on_when_the_model_reloads(qtbot: Any, app: Any, store_call: Any) -> None:
    """Changing the thread count reloads the model (Services.reload_engine); the adapter comes back."""
    (adapter,) = add_adapters(app, store_call, 1)
    with qtbot.waitSignal(app.session.personalization.adapter_did_activate, timeout=30_000):
        app.session.personalization.activate(adapter)
    with qtbot.waitSignals(
        [app.session.engine_did_load, app.session.personalization.adapter_did_activate], timeout=LOAD_TIMEOUT_MS
    ):
        app.session.set_threads(1)
    assert app.session.threads == 1
    assert live_adapter(app) == adapter


def test_a_corrupt_active_adapter_is_refused_and_the_chat_keeps_the_base(qtbot: Any, app: Any, store_call: Any) -> None:
    from personalize.registry import Registry

    (good,) = add_adapters(app, store_call, 1)

    def corrupt(store: Any) -> None:
        store.blobs.put(f"adapter/{good}.gguf", b"GGUF but not really")
        Registry(store).set_active(good)

    store_call(app.session, corrupt)
    with qtbot.waitSignal(app.session.personalization.adapter_did_fail, timeout=30_000) as failed:
        app.session.personalization.sync()
    assert "corrupt" in failed.args[0]
    qtbot.waitUntil(lambda: "not applied" in app.window.status.text())
    assert live_adapter(app) is None


def test_the_active_adapter_is_applied_when_the_app_starts(
    qtbot: Any, home_with_store: Path, passphrase: str, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from personalize.registry import Registry
    from storage.store import Store

    monkeypatch.setenv("HEARTH_PASSPHRASE", passphrase)
    with Store.open() as store:
        adapter = make_adapter(store, 1)
        Registry(store).set_active(adapter)
    services, session, window = make_window()
    try:
        with qtbot.waitSignal(session.personalization.adapter_did_activate, timeout=LOAD_TIMEOUT_MS) as applied:
            window.start()
        assert applied.args == [adapter]
        qtbot.waitUntil(lambda: window.adapter_picker.currentData() == adapter)
        assert session.engine_worker.call(lambda: services.engine().adapter_id) == adapter
    finally:
        session.shutdown()
        services.close()


def test_personalize_runs_in_another_process_and_says_when_data_is_too_little(
    qtbot: Any, app: Any, no_job_left: None
) -> None:
    from personalize import job

    view = app.window.personalize
    app.window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(app.session.personalization.personalize_did_start, timeout=10_000) as started:
        view.start_button.click()
    pid = started.args[0]
    assert pid != os.getpid()
    assert app.window.tray.text == "Hearth: getting ready to learn"
    with qtbot.waitSignal(app.session.personalization.personalize_did_finish, timeout=JOB_TIMEOUT_MS) as finished:
        pass
    status = finished.args[0]
    assert status["state"] == "failed" and "Not enough text" in status["error"]
    assert job.read_status()["pid"] == pid  # the status file was written by the child, not by us
    assert "Not enough text to personalize yet" in view.state_label.text()
    assert view.start_button.isEnabled() and not view.cancel_button.isEnabled()
    assert app.window.tray.text == "Hearth: idle"
    assert "Not enough text" in app.window.tray.last_notification


def test_cancel_stops_the_background_job(
    qtbot: Any,
    app: Any,
    store_call: Any,
    base_cache: Path,
    ledger_documents: list[tuple[str, str]],
    no_job_left: None,
) -> None:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from personalize import job

    def write_chats(store: Any) -> None:
        for name, text in ledger_documents:
            cid = store.chats.create(name)
            store.chats.add_message(cid, "user", f"Write the {name} entries.")
            store.chats.add_message(cid, "assistant", text)

    store_call(app.session, write_chats)
    view = app.window.personalize
    app.window.tabs.setCurrentWidget(view)
    app.session.personalization.job_config = SMALL_JOB
    with qtbot.waitSignal(app.session.personalization.personalize_did_start, timeout=10_000) as started:
        view.start_button.click()
    pid = started.args[0]
    assert pid != os.getpid()
    # While the child starts, reads the store and loads the model, the GUI thread keeps ticking.
    gaps: list[int] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    # Past the child's claim (an earlier cancel request would be cleared by it): its own pid in the status.
    qtbot.waitUntil(
        lambda: (s := job.read_status()).get("pid") == pid and s.get("state") in ("loading", "training"),
        timeout=JOB_TIMEOUT_MS,
    )
    timer.stop()
    # A second without a tick means work ran on the GUI thread (a store read or model load takes seconds); the
    # bound is loose so that a loaded machine's scheduling hiccups do not fail it.
    assert len(gaps) > 10 and max(gaps) < 1000, f"the GUI thread stalled for {max(gaps)} ms while the job started"
    assert view.cancel_button.isEnabled() and not view.start_button.isEnabled()
    with qtbot.waitSignal(app.session.personalization.personalize_did_finish, timeout=JOB_TIMEOUT_MS) as finished:
        view.cancel_button.click()
    assert finished.args[0]["state"] == "cancelled"
    assert job.running() is None
    assert view.state_label.text() == "Cancelled."
