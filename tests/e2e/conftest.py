"""The `hearth` fixture: the CLI as a user runs it, in a subprocess, against this test's HEARTH_HOME;
`spawn`, for a Hearth process the test talks to while it runs (a download, a writer); and `serving`, for
`hearth serve` on a free port."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.fixtures.child_env import ROOT, pythonpath


class Cli(Protocol):
    def __call__(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def hearth(hearth_home: Path) -> Cli:
    """Run `python -m desktop.cli ARGS`; stdin is closed unless given, `env` adds to this test's environment."""

    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "desktop.cli", *args],
            **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": pythonpath(), **(env or {})},
            timeout=600,
        )

    return run


class Spawn(Protocol):
    def __call__(self, *argv: str, **popen: Any) -> subprocess.Popen[str]: ...


@pytest.fixture
def spawn(hearth_home: Path) -> Spawn:
    """Start `python ARGV` (e.g. "-m", "desktop.cli", "serve") with this worktree on PYTHONPATH, text pipes for
    stdout and stderr and stdin closed; keyword arguments override any of these `Popen` options."""

    def start(*argv: str, **popen: Any) -> subprocess.Popen[str]:
        options: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "text": True,
            "cwd": ROOT,
            "env": {**os.environ, "PYTHONPATH": pythonpath()},
        }
        return subprocess.Popen([sys.executable, *argv], **{**options, **popen})

    return start


Serving = Callable[..., AbstractContextManager[tuple[subprocess.Popen[str], str]]]


@pytest.fixture
def serving(spawn: Spawn) -> Serving:
    """`with serving(**popen) as (process, root_url)`: `hearth --threads 1 serve --port 0`, entered once it
    listens (its first stdout line names the URL); killed on the way out if it is still running."""

    @contextlib.contextmanager
    def serve(**popen: Any) -> Iterator[tuple[subprocess.Popen[str], str]]:
        server = spawn("-m", "desktop.cli", "--threads", "1", "serve", "--port", "0", **popen)
        assert server.stdout is not None and server.stderr is not None
        try:
            line = server.stdout.readline()  # printed once the model is loaded and the socket listens
            match = re.search(r"(http://127\.0\.0\.1:(\d+))/v1", line)
            assert match and int(match.group(2)) > 0, server.stderr.read() if server.poll() is not None else line
            yield server, match.group(1)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()

    return serve
