"""No Hearth process can leave a core dump, even started from a shell with `ulimit -c unlimited`.

Each process is started with an unlimited core size (as such a shell would) and checked from outside:
- `/proc/<pid>/limits` shows a core size of 0, soft and hard;
- it is non-dumpable (`PR_SET_DUMPABLE` 0): another process of the same user and capabilities may no longer
  ptrace it, so opening its `/proc/<pid>/syscall` (a ptrace-attach check) fails, where it succeeds for a plain
  Python process. Root's CAP_SYS_PTRACE bypasses that check, so under root both sides drop that capability;
- killed with SIGABRT (what a llama.cpp `GGML_ASSERT` raises), it leaves no core file where a plain Python
  process crashed the same way leaves one (where `kernel.core_pattern` writes files, as here and in CI).
The plain Python process proves that each check can fail.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import Serving, Spawn

PR_CAPBSET_DROP, CAP_SYS_PTRACE = 24, 19
READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine, "0")
PLAIN_PYTHON = ("-c", "import sys; sys.stdin.readline()")


def _as_a_user_shell_starts_it() -> None:
    """preexec_fn: `ulimit -c unlimited`; under root also no CAP_SYS_PTRACE (see the module docstring)."""
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    _drop_ptrace_capability()


def _drop_ptrace_capability() -> None:
    if os.geteuid() == 0 and ctypes.CDLL(None, use_errno=True).prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "cannot drop CAP_SYS_PTRACE")


def _start(spawn: Spawn, *argv: str, cwd: Path) -> subprocess.Popen[str]:
    return spawn(*argv, cwd=cwd, stdin=subprocess.PIPE, preexec_fn=_as_a_user_shell_starts_it)


def _wait_until_reading_stdin(process: subprocess.Popen[str]) -> None:
    """Until the process blocks in read(0): its entry point has run (polling, not a guessed sleep)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            syscall = Path(f"/proc/{process.pid}/syscall").read_text().split()
        except PermissionError:  # not root, and the process is already non-dumpable
            return
        if syscall[:2] == [READ_SYSCALL, "0x0"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the process never waited for stdin: {process.poll()}")


def _core_size_limit(pid: int) -> list[str]:
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max core file"))
    return line.split()[4:6]  # "Max core file size <soft> <hard> bytes"


def _ptrace_attachable(pid: int) -> bool:
    """Whether a process with our uid and capabilities (minus CAP_SYS_PTRACE) may open /proc/<pid>/syscall."""
    observer = subprocess.run(
        [sys.executable, "-c", f"open('/proc/{pid}/syscall').read()"],
        preexec_fn=_drop_ptrace_capability,
        capture_output=True,
        text=True,
    )
    assert observer.returncode == 0 or "PermissionError" in observer.stderr, observer.stderr
    return observer.returncode == 0


def _crash(process: subprocess.Popen[str], cwd: Path) -> list[str]:
    """Core files left in its directory by SIGABRT."""
    process.send_signal(signal.SIGABRT)
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGABRT
    return sorted(p.name for p in cwd.iterdir() if p.name.startswith("core"))


def _core_files_land_in_cwd() -> bool:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    return re.fullmatch(r"core(\.%[a-zA-Z])*", pattern) is not None


def test_a_plain_python_process_would_dump_core(tmp_path: Path, spawn: Spawn) -> None:
    """The control: the same start and the same checks on a process that does not harden itself."""
    control = _start(spawn, *PLAIN_PYTHON, cwd=tmp_path)
    _wait_until_reading_stdin(control)
    assert _core_size_limit(control.pid) == ["unlimited", "unlimited"]
    assert _ptrace_attachable(control.pid)
    crashed = _crash(control, tmp_path)
    if _core_files_land_in_cwd():
        assert crashed, "a plain Python process crashed with `ulimit -c unlimited` left no core file"


def _assert_no_core_dump(process: subprocess.Popen[str], cwd: Path) -> None:
    assert _core_size_limit(process.pid) == ["0", "0"]  # the shell's unlimited is undone, hard limit too
    assert not _ptrace_attachable(process.pid)  # non-dumpable
    assert _crash(process, cwd) == []


def test_serve_and_the_app_entry_point_leave_no_core_dump(store, tmp_path: Path, serving: Serving) -> None:  # type: ignore[no-untyped-def]
    """`hearth serve` runs through `desktop.cli.main`, the entry point of the window and of every command."""
    store.close()
    with serving(cwd=tmp_path, stdin=subprocess.PIPE, preexec_fn=_as_a_user_shell_starts_it) as (server, _):
        _assert_no_core_dump(server, tmp_path)


def test_the_trainer_subprocess_leaves_no_core_dump(store, tmp_path: Path, spawn: Spawn) -> None:  # type: ignore[no-untyped-def]
    """`python -m personalize.job` as `job.spawn` starts it, caught waiting for its passphrase on the pipe."""
    store.close()
    trainer = _start(spawn, "-m", "personalize.job", "--passphrase-stdin", cwd=tmp_path)
    try:
        _wait_until_reading_stdin(trainer)
        _assert_no_core_dump(trainer, tmp_path)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.communicate()
