"""`hearth docs watch` as a user runs it: a real subprocess follows a folder, `hearth docs` shows the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import ROOT
from tests.fixtures.child_env import pythonpath

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

ENV = {"HEARTH_PASSPHRASE": "correct horse battery staple", "HEARTH_KEYRING": "0"}


def _line(stream, deadline: float) -> str:  # type: ignore[no-untyped-def]
    line = stream.readline()
    if not line or time.monotonic() > deadline:
        raise AssertionError("`hearth docs watch` said nothing more")
    return line.strip()


@pytest.mark.slow
def test_docs_watch_follows_a_folder_until_ctrl_c(hearth: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "first.txt").write_text("The boiler service is due in October.\n")
    assert hearth("add", str(folder), "--no-embed").returncode == 0
    assert "watching " + str(folder.resolve()) in hearth("docs").stderr

    proc = subprocess.Popen(
        [sys.executable, "-m", "desktop.cli", "docs", "watch", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath()},
    )
    try:
        deadline = time.monotonic() + 300
        assert "watching" in _line(proc.stderr, deadline)
        first = json.loads(_line(proc.stdout, deadline))  # the start-up scan: unchanged, only embedded now
        assert first["skipped"] == 1 and first["failed"] == 0
        (folder / "second.md").write_text("# Car\nThe MOT test is booked for the 3rd of March.\n")
        (folder / "first.txt").unlink()
        seen = {"added": 0, "forgotten": []}
        while not (seen["added"] and seen["forgotten"]):
            batch = json.loads(_line(proc.stdout, deadline))
            seen["added"] += batch["added"]
            seen["forgotten"] += batch["forgotten"]
        assert seen["forgotten"] == [str(folder.resolve() / "first.txt")]
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - stopped < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = {Path(d["path"]).name: d["status"] for d in json.loads(hearth("docs", "--json").stdout)}
    assert listed == {"second.md": "indexed"}
    found = json.loads(hearth("search", "MOT booked", "--json").stdout)
    assert Path(found[0]["source"]).name == "second.md"
