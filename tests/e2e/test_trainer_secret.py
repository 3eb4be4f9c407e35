"""The background trainer gets the passphrase through a pipe only: not in argv, not in its environment.

And `hearth personalize --background` works when the passphrase was typed at the terminal prompt (before,
the child got nothing and failed to open the store).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from personalize import job
from storage import paths
from storage.store import Store
from tests.fixtures.child_env import ROOT, pythonpath

PASSPHRASE = "test passphrase: correct horse battery staple"  # tests/conftest.py's STORE_PASSPHRASE


def _exec_done(pid: int) -> None:
    """Until the child has exec'd the trainer (before that, /proc shows the parent's copied environment)."""
    deadline = time.monotonic() + 60
    while b"personalize.job" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the trainer never started"
        time.sleep(0.02)


def _unlocked_by(pid: int) -> bool:
    """Whether the trainer opened the store: it then claims the job, writing its pid to the status file."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = job.read_status()
        if status.get("pid") == pid:
            return True
        if not job.alive(pid):
            return False
        time.sleep(0.2)
    return False


def _read_until_closed(fd: int) -> bytes:
    try:
        return os.read(fd, 1024)
    except OSError:  # EIO: the terminal's other side closed (the CLI exited)
        return b""


def _stop(pid: int) -> None:
    job.request("cancel")
    deadline = time.monotonic() + 120
    while job.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if job.alive(pid):
        os.kill(pid, 9)


def test_the_trainer_gets_the_passphrase_through_the_pipe_only(store: Store) -> None:
    store.close()
    assert os.environ["HEARTH_PASSPHRASE"] == PASSPHRASE  # what a script would set
    pid = job.spawn(max_minutes=0.05)
    try:
        _exec_done(pid)
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"HEARTH_PASSPHRASE" not in environ and PASSPHRASE.encode() not in environ
        assert PASSPHRASE.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert _unlocked_by(pid), (paths.logs() / "personalize.log").read_text()[-2000:]
    finally:
        _stop(pid)


def test_background_personalize_after_a_typed_passphrase(store: Store) -> None:
    """The passphrase typed at the prompt (a real terminal: a pty) reaches the background trainer."""
    store.close()
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_PASSPHRASE"}
    leader, follower = pty.openpty()
    cli = subprocess.Popen(
        [sys.executable, "-m", "desktop.cli", "personalize", "--background", "--max-minutes", "0.05"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": pythonpath()},
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        preexec_fn=lambda: os.login_tty(follower),
    )
    os.close(follower)
    output = b""
    while b"passphrase:" not in output:
        chunk = _read_until_closed(leader)
        assert chunk, f"the CLI exited without asking for the passphrase: {output!r}"
        output += chunk
    os.write(leader, PASSPHRASE.encode() + b"\n")
    while chunk := _read_until_closed(leader):
        output += chunk
    os.close(leader)
    assert cli.wait(timeout=120) == 0, output
    pid = int(output.split(b"(process ")[1].split(b")")[0])
    try:
        assert _unlocked_by(pid), (paths.logs() / "personalize.log").read_text()[-2000:]
    finally:
        _stop(pid)
