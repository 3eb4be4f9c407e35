"""`hearth models pull` against a real HTTP server on 127.0.0.1 in the hub's URL layout, serving the real
bundled GGUF: verified registration, kill -9 and resume, a corrupted byte, 404, a stall then a cancel, and a
disk too small."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.child_env import ROOT, pythonpath

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, Spawn

_spec = importlib.util.spec_from_file_location("model_hub", ROOT / "tests" / "fixtures" / "model_hub.py")
model_hub = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["model_hub"] = model_hub
_spec.loader.exec_module(model_hub)  # type: ignore[union-attr]

REPO = "Qwen/Qwen2.5-0.5B-Instruct-GGUF"  # a catalog entry; the test hub serves the bundled model's bytes there
FILE = "qwen2.5-0.5b-instruct-q4_k_m.gguf"


@pytest.fixture
def hub(bundled_model: Path) -> Iterator:
    hub = model_hub.Hub(files={f"{REPO}/{FILE}": bundled_model, "test/repo/model.gguf": bundled_model})
    server = model_hub.serve(hub)
    yield hub
    hub.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def bundled_sha(bundled_model: Path) -> str:
    return model_hub.sha256_of(bundled_model)


def _settings() -> dict:
    return json.loads((Path(os.environ["HEARTH_HOME"]) / "settings.json").read_text())


def _wait_for_part(part: Path, at_least: int, proc: subprocess.Popen[str], limit_s: float = 120) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        size = part.stat().st_size if part.exists() else 0
        if size >= at_least:
            return size
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{part} did not reach {at_least} bytes")


def test_catalog_pull_through_a_mirror_verifies_records_and_registers(
    hearth: Cli, hub, bundled_sha: str, bundled_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HEARTH_MODEL_MIRROR", hub.base)
    result = hearth("models", "pull", "qwen2.5-0.5b")
    assert result.returncode == 0, result.stderr
    assert "verified and added qwen2.5-0.5b" in result.stdout
    assert "MB/s" in result.stderr and "ETA" in result.stderr  # Hearth's own progress line
    settings = _settings()
    assert settings["pulled"][f"{REPO}/{FILE}"] == {"sha256": bundled_sha, "revision": model_hub.COMMIT}
    entry = settings["models"]["qwen2.5-0.5b"]
    assert entry["sha256"] == bundled_sha and entry["source"] == "pull"
    assert Path(entry["path"]).read_bytes() == bundled_model.read_bytes()
    assert [m for m, path, _ in hub.requests if path.startswith(f"/{REPO}/")] == ["HEAD", "GET"]
    assert hub.header_names <= {"host", "user-agent", "accept-encoding", "range"}  # what SECURITY.md says

    # The recorded sha256 now pins the entry: a server that later serves other bytes is refused up front.
    other = Path(os.environ["HEARTH_HOME"]) / "other.gguf"
    data = bytearray(bundled_model.read_bytes())
    data[-1] ^= 0xFF
    other.write_bytes(bytes(data))
    hub.files[f"{REPO}/{FILE}"] = other
    swapped = model_hub.Hub(files=dict(hub.files))
    server = model_hub.serve(swapped)
    try:
        monkeypatch.setenv("HEARTH_MODEL_MIRROR", swapped.base)
        again = hearth("models", "pull", "qwen2.5-0.5b", "--name", "again")
    finally:
        server.shutdown()
    assert again.returncode == 1 and "refusing to download" in again.stderr
    assert [m for m, _, _ in swapped.requests] == ["HEAD"]


def test_kill_9_mid_download_then_resume_from_where_it_stopped(
    hearth: Cli, spawn: Spawn, hub, bundled_sha: str
) -> None:  # type: ignore[no-untyped-def]
    url = hub.url("test/repo", "model.gguf")
    part = Path(os.environ["HEARTH_HOME"]) / "models" / ".model.gguf.part"
    hub.rate = 8e6  # ~12 s for the whole file: time to kill it midway
    proc = spawn("-m", "desktop.cli", "models", "pull", url, "--sha256", bundled_sha)
    _wait_for_part(part, 20 << 20, proc)
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    kept = part.stat().st_size
    size = hub.files["test/repo/model.gguf"].stat().st_size
    assert 20 << 20 <= kept < size
    hub.rate = None
    hub.requests.clear()
    resumed = hearth("models", "pull", url, "--sha256", bundled_sha)
    assert resumed.returncode == 0, resumed.stderr
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.startswith("/cdn/")]
    assert ranges == [f"bytes={kept}-"], ranges  # asked only for the rest
    assert hub.header_names == {"host", "user-agent", "accept-encoding", "range"}
    assert _settings()["models"]["model"]["sha256"] == bundled_sha
    assert not part.exists()


def test_a_corrupted_byte_is_refused_and_deleted(hearth: Cli, hub, bundled_sha: str) -> None:  # type: ignore[no-untyped-def]
    hub.corrupt = True
    result = hearth("models", "pull", hub.url("test/repo", "model.gguf"), "--sha256", bundled_sha)
    assert result.returncode == 1
    assert "failed verification" in result.stderr and "nothing was registered" in result.stderr
    models_dir = Path(os.environ["HEARTH_HOME"]) / "models"
    assert list(models_dir.iterdir()) == []  # neither the file nor its part is left
    assert "model" not in hearth("models", "list").stdout.split()


def test_a_missing_file_is_a_clear_404(hearth: Cli, hub, bundled_sha: str) -> None:  # type: ignore[no-untyped-def]
    result = hearth("models", "pull", hub.url("test/repo", "nope.gguf"), "--sha256", bundled_sha)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("hearth: not found on the server (HTTP 404)")


def test_a_url_without_sha256_is_refused(hearth: Cli, hub) -> None:  # type: ignore[no-untyped-def]
    result = hearth("models", "pull", hub.url("test/repo", "model.gguf"))
    assert result.returncode == 1 and "needs --sha256" in result.stderr
    assert hub.requests == []  # nothing was sent


def test_a_stalled_server_then_ctrl_c_keeps_the_part_for_later(
    hearth: Cli, spawn: Spawn, hub, bundled_sha: str
) -> None:  # type: ignore[no-untyped-def]
    hub.stall_after = 4 << 20
    part = Path(os.environ["HEARTH_HOME"]) / "models" / ".model.gguf.part"
    proc = spawn("-m", "desktop.cli", "models", "pull", hub.url("test/repo", "model.gguf"), "--sha256", bundled_sha)
    _wait_for_part(part, 4 << 20, proc)
    time.sleep(0.5)  # the server is silent now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "paused; run the same command again to resume" in err and "Traceback" not in err
    assert part.stat().st_size == 4 << 20


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is not installed")
def test_too_little_disk_is_refused_before_the_first_byte(hearth: Cli, hub, bundled_sha: str) -> None:  # type: ignore[no-untyped-def]
    models_dir = Path(os.environ["HEARTH_HOME"]) / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this sandbox forbids mount namespaces: {probe.stderr.strip()[:200]}")
    url = hub.url("test/repo", "model.gguf")
    script = (  # a 32 MB filesystem at the models folder, in a private mount namespace
        f'mount -t tmpfs -o size=32m tmpfs "{models_dir}" && '
        f'exec "{sys.executable}" -m desktop.cli models pull "{url}" --sha256 {bundled_sha}'
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath()},
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "the download needs about 0.1 GB of disk, 0.0 GB free" in result.stderr
    assert [m for m, p, _ in hub.requests if p.startswith("/cdn/")] == []  # no byte was fetched
