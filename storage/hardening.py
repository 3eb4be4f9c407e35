"""Keep the process's memory out of core dumps: it holds the database key, derived keys and decrypted text.

A llama.cpp abort (a `GGML_ASSERT` on a hostile GGUF), a segfault in a native library or a stray SIGQUIT
would otherwise let systemd-coredump, apport or the kernel's `core` pattern write the whole address space
outside HEARTH_HOME, unencrypted. Every Hearth entry point (CLI and window, the trainer subprocess, the
frozen bundle) calls `disable_core_dumps()` first. It lives in `storage`, the lowest layer, because the
trainer (`personalize`) may not import `desktop`.

- `RLIMIT_CORE` soft and hard 0: no core file, and no child can raise it back (a shell's `ulimit -c
  unlimited` is undone). Core-dump helpers behind a pipe (`|/usr/lib/systemd/systemd-coredump`) are
  started by the kernel regardless of the limit, hence also:
- Linux `prctl(PR_SET_DUMPABLE, 0)`: the kernel dumps nothing at all, and other processes of the same user
  can no longer ptrace us or read `/proc/<pid>/mem` or `environ`. It is reset by `execve`, so each process
  sets it itself.
- Windows: Windows Error Reporting leaves the heap out of crash reports (`WerSetFlags(NOHEAP)`).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
WER_FAULT_REPORTING_FLAG_NOHEAP = 1


def disable_core_dumps() -> None:
    """Best effort, never fatal: a platform without a knob keeps running (SECURITY.md says what remains)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    elif sys.platform == "win32":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.windll.kernel32.WerSetFlags(WER_FAULT_REPORTING_FLAG_NOHEAP)  # type: ignore[attr-defined]


def core_dumps_disabled() -> bool | None:
    """Whether this process can no longer write a core dump (`hearth doctor`); None where there are no limits."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    if resource.getrlimit(resource.RLIMIT_CORE) != (0, 0):
        return False
    if sys.platform.startswith("linux"):
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    return True
