"""The model picker, as a user drives it: models found under a temporary HOME holding an Ollama store and an
LM Studio folder (the real bundled GGUF), registered in place with one click; catalog downloads from a real
HTTP hub on 127.0.0.1 with progress, cancel and resume; errors and the fit-before-load refusal as sentences."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.model_homes import LMSTUDIO_NAME, OLLAMA_NAME, make_home_with_models
from tests.fixtures.model_hub import Hub, serve

CATALOG_REPO = "Qwen/Qwen2.5-0.5B-Instruct-GGUF"  # the test hub serves the bundled model's bytes there
CATALOG_FILE = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
TIMEOUT_MS = 60_000


@pytest.fixture
def models_home(tmp_path: Path, bundled_model: Path, hearth_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    return make_home_with_models(tmp_path / "home", bundled_model, monkeypatch)


@pytest.fixture
def hub(bundled_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    hub = Hub(files={f"{CATALOG_REPO}/{CATALOG_FILE}": bundled_model})
    server = serve(hub)
    monkeypatch.setenv("HEARTH_MODEL_MIRROR", hub.base)
    yield hub
    hub.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def picker(qtbot: Any, models_home: dict) -> Any:
    from desktop.ui.app import make_app
    from desktop.ui.model_picker import ModelPicker

    make_app()
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.resize(1000, 700)
    picker.show()
    with qtbot.waitSignal(picker.picker_did_refresh, timeout=TIMEOUT_MS):
        picker.refresh()
    return picker


def _row(tree: Any, name: str) -> list[str]:
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.text(0).split("  (")[0] == name:
            return [item.text(c) for c in range(tree.columnCount())]
    raise AssertionError(
        f"{name} not listed: {[tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]}"
    )


def _registry() -> dict:
    settings = Path(os.environ["HEARTH_HOME"]) / "settings.json"
    return json.loads(settings.read_text())["models"] if settings.exists() else {}


def _wait_message(qtbot: Any, picker: Any, pattern: str) -> str:
    qtbot.waitUntil(lambda: re.search(pattern, picker.message.text()) is not None, timeout=TIMEOUT_MS)
    return picker.message.text()


def test_found_models_show_their_facts_and_use_registers_in_place(qtbot: Any, picker: Any, models_home: dict) -> None:
    from desktop.engine.gguf_file import inspect

    info = inspect(models_home["blob"])
    _, source, arch, quant, size, ram, personal, _ = _row(picker.found, OLLAMA_NAME)
    assert (source, arch, quant, personal) == ("ollama", info.architecture, info.file_type, "yes")
    assert size == f"{info.size_bytes / 1e9:.1f} GB" and re.fullmatch(r"\d+\.\d GB", ram)
    assert _row(picker.found, LMSTUDIO_NAME)[1] == "lmstudio"
    assert picker.button_for(picker.registered, "smollm2-135m").text() == "In use"
    assert picker.found_note.text().startswith("2 chat models found")

    with qtbot.waitSignal(picker.model_will_use, timeout=TIMEOUT_MS) as used:
        picker.button_for(picker.found, OLLAMA_NAME).click()
    assert used.args == [OLLAMA_NAME]
    entry = _registry()[OLLAMA_NAME]
    assert (entry["path"], entry["source"], entry["sha256"]) == (
        str(models_home["blob"]),
        "ollama",
        str(models_home["sha"]),
    )
    qtbot.waitUntil(lambda: picker.button_for(picker.found, OLLAMA_NAME).text() == "On Hearth", timeout=TIMEOUT_MS)
    assert not picker.button_for(picker.found, OLLAMA_NAME).isEnabled()
    assert picker.button_for(picker.registered, OLLAMA_NAME).text() == "In use"


def test_measured_speed_is_shown_once_a_model_has_run(qtbot: Any, picker: Any, bundled_model: Path) -> None:
    from desktop.engine.models import record_speed

    assert _row(picker.registered, "smollm2-135m")[2] == "not run yet"
    record_speed(bundled_model, 41.96)  # what the engine records after each reply
    with qtbot.waitSignal(picker.picker_did_refresh, timeout=TIMEOUT_MS):
        picker.refresh()
    assert _row(picker.registered, "smollm2-135m")[2] == "42.0 tok/s"


def test_a_model_that_would_not_fit_is_refused_plainly(
    qtbot: Any, picker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop.engine import model_fit

    # This machine has the memory; a laptop that has not is stood in for by what psutil would report there.
    monkeypatch.setattr(model_fit, "available_memory", lambda: 40_000_000)
    used: list[str] = []
    picker.model_will_use.connect(used.append)
    picker.button_for(picker.found, LMSTUDIO_NAME).click()
    text = _wait_message(qtbot, picker, "needs about")
    assert re.search(r"needs about \d+\.\d GB of memory at a \d+-token context, 0\.0 GB free", text), text
    assert text[0].isupper() and text.endswith(".") and picker.message.property("role") == "error"
    assert used == [] and _registry() == {}

    with qtbot.waitSignal(picker.picker_did_refresh, timeout=TIMEOUT_MS):
        picker.refresh()  # the snapshot now knows the small memory: no catalog entry fits
    picker.button_for(picker.downloads, "qwen2.5-0.5b").click()
    assert picker.message.text() == (
        "qwen2.5-0.5b needs about 1.0 GB of memory, 0.0 GB free; close other programs or choose a smaller model."
    )
    assert not picker.progress_box.isVisible()


def test_download_shows_speed_and_eta_then_registers_and_uses(qtbot: Any, picker: Any, hub: Hub) -> None:
    from desktop.engine import model_pull

    hub.rate = 30e6  # bytes/s: a few seconds, so progress is seen
    texts: list[str] = []
    best = [picker.downloads.topLevelItem(i).text(0) for i in range(picker.downloads.topLevelItemCount())]
    assert sum("fits this computer best" in t for t in best) == 1
    size, ram, license_ = _row(picker.downloads, "qwen2.5-0.5b")[1:4]
    assert (size, ram, license_) == ("0.5 GB", "1.0 GB", "apache-2.0")
    with qtbot.waitSignal(picker.model_will_use, timeout=TIMEOUT_MS) as used:
        picker.button_for(picker.downloads, "qwen2.5-0.5b").click()
        assert picker.progress_box.isVisible() and picker.cancel_button.isEnabled()
        qtbot.waitUntil(lambda: "MB/s" in picker.progress_label.text(), timeout=TIMEOUT_MS)
        texts.append(picker.progress_label.text())
    assert used.args == ["qwen2.5-0.5b"]
    assert re.fullmatch(r"\d+\.\d of \d+\.\d MB · \d+\.\d MB/s · about \d+ (s|min) left", texts[0]), texts
    assert not picker.progress_box.isVisible()
    entry = _registry()["qwen2.5-0.5b"]
    assert entry["source"] == "pull" and Path(entry["path"]).name == CATALOG_FILE
    assert model_pull._recorded()[f"{CATALOG_REPO}/{CATALOG_FILE}"]["sha256"] == entry["sha256"]


def test_cancel_keeps_the_part_and_download_resumes_it(qtbot: Any, picker: Any, hub: Hub) -> None:
    from storage import paths

    hub.rate = 4e6
    picker.button_for(picker.downloads, "qwen2.5-0.5b").click()
    qtbot.waitUntil(lambda: picker.progress.value() > 0, timeout=TIMEOUT_MS)
    picker.cancel_button.click()
    text = _wait_message(qtbot, picker, "paused")
    assert text == "Download of qwen2.5-0.5b paused; click Download to resume where it stopped."
    part = paths.models() / f".{CATALOG_FILE}.part"
    kept = part.stat().st_size
    assert kept > 0 and not picker.progress_box.isVisible()

    hub.rate = None
    with qtbot.waitSignal(picker.model_will_use, timeout=TIMEOUT_MS):
        picker.button_for(picker.downloads, "qwen2.5-0.5b").click()
    ranges = [r for method, _, r in hub.requests if method == "GET" and r]
    assert ranges and int(ranges[-1].removeprefix("bytes=").rstrip("-")) >= kept
    assert not part.exists()


def test_a_server_error_is_one_clear_sentence(qtbot: Any, picker: Any, hub: Hub) -> None:
    picker.button_for(picker.downloads, "llama3.2-1b").click()  # not on this hub
    text = _wait_message(qtbot, picker, "HTTP 404")
    assert text.startswith("Not found on the server (HTTP 404): http://127.0.0.1:") and text.endswith(".gguf.")
    assert picker.message.property("role") == "error"
    assert picker.button_for(picker.downloads, "llama3.2-1b").isEnabled()  # nothing stuck: try again later


def test_progress_text_reads_as_a_person_would_say_it() -> None:
    from desktop.ui.model_picker import progress_text, sentence

    assert progress_text(123_400_000, 491_000_000, 45_200_000) == "123.4 of 491.0 MB · 45.2 MB/s · about 8 s left"
    assert progress_text(0, 2_500_000_000, 2_000_000) == "0.0 of 2500.0 MB · 2.0 MB/s · about 21 min left"
    assert progress_text(5_000_000, 0, 0) == "5.0 MB"
    assert sentence("the server sent 5 of 9 bytes; run again to resume") == (
        "The server sent 5 of 9 bytes; run again to resume."
    )


def test_the_models_tab_shows_the_speed_a_real_reply_measured(qtbot: Any, models_home: dict, app: Any) -> None:
    from tests.gui.test_chat_window import send

    assert send(qtbot, app, "Name a colour.")["status"] == "complete"
    picker = app.window.models_view
    with qtbot.waitSignal(picker.picker_did_refresh, timeout=TIMEOUT_MS):
        app.window.tabs.setCurrentWidget(picker)
    assert re.fullmatch(r"\d+\.\d tok/s", _row(picker.registered, "smollm2-135m")[2])
    assert picker.button_for(picker.registered, "smollm2-135m").text() == "In use"
    assert _row(picker.found, OLLAMA_NAME)[1] == "ollama"

    with qtbot.waitSignal(app.session.engine_did_load, timeout=TIMEOUT_MS) as loaded:
        picker.button_for(picker.found, OLLAMA_NAME).click()  # registered in place, then loaded by the session
    assert loaded.args == [OLLAMA_NAME]
    qtbot.waitUntil(lambda: app.window.model_picker.currentText() == OLLAMA_NAME, timeout=TIMEOUT_MS)
