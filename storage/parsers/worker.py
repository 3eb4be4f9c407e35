"""Parsing each file in a child process with a wall-clock and a memory limit, so no file can stall a batch.

Parsers are third-party code fed the user's hostile or merely strange files: a backtracking regex, a PDF
that expands without end or a parser bug looping forever would otherwise hang or exhaust the app. The
child (`python -m storage.parsers.worker`, which also works frozen: see packaging/hearth_entry.py) runs
under RLIMIT_AS and without core dumps; the parent waits on its pipe in 0.1 s steps, so a file over its
time limit, or a Stop, ends with the child killed and respawned, and the batch moves on. OCR of a scanned
page takes seconds, so the child sends a heartbeat frame before each one and that page gets its own
budget (`ocr_page_seconds`): a scanned book is bounded per page instead of refused for its length.

Privacy: file bytes go to the child over its stdin and parsed text comes back over its stdout, as JSON
(not pickle: a child compromised by a hostile file must not be able to run code in the parent). The child
writes nothing to disk, its stderr goes to /dev/null (library warnings can quote content), and its
environment holds no secrets (HEARTH_PASSPHRASE and friends are left out).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO, Any

from storage.parsers.model import ParsedDoc, ParseError, Section

_HEADER = struct.Struct("<Q")  # frame length
_POLL_S = 0.1  # how often a waiting parent checks the clock and should_stop
# What the child needs to start (frozen too: the bundle's entry point resolves HEARTH_HOME first); never
# HEARTH_PASSPHRASE or tokens.
_ENV_KEPT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "HOME", "HEARTH_HOME")


@dataclass(frozen=True)
class ParseLimits:
    """Per-file limits; the defaults leave room for a 50 MB mailbox, never for a runaway."""

    seconds: float = 60.0  # a 1,000-page PDF parses in ~20 s on a loaded 2-core laptop
    # Each scanned page OCR starts on gets this much more (the child says so before each page): 2-10 s
    # a page on a loaded 2-core laptop, so a scanned book is bounded per page, not refused for its length.
    ocr_page_seconds: float = 60.0
    memory_mb: int = 2048  # address space of the child, parser libraries included (~150 MB idle)


class Stopped(Exception):
    """should_stop() turned true while a file was parsing; the child was killed."""


class ParserProcess:
    """One long-lived child parsing files in turn; replaced whenever it is killed or dies."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or ParseLimits()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ParserProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(self, name: str, data: bytes, should_stop: Callable[[], bool] = lambda: False) -> list[ParsedDoc]:
        """Parse in the child; ParseError for bad files and for files over a limit; Stopped on a stop."""
        proc = self._child()
        request = json.dumps({"name": name}).encode()
        try:
            _write_frame(proc.stdin, request)  # type: ignore[arg-type]
            _write_frame(proc.stdin, data)  # type: ignore[arg-type]
        except OSError:  # BrokenPipeError: the child died between files
            why = self._death()
            self._kill()
            raise ParseError(f"the parser process died ({why})") from None
        deadline = time.monotonic() + self.limits.seconds
        ocr_pages = 0
        try:
            while True:
                message = json.loads(_read_frame(proc.stdout, deadline, should_stop))  # type: ignore[arg-type]
                if "alive" not in message:
                    break
                ocr_pages += 1  # a heartbeat: OCR starts on a page, which gets its own budget
                deadline = max(deadline, time.monotonic() + self.limits.ocr_page_seconds)
        except TimeoutError:
            self._kill()
            if ocr_pages:
                raise ParseError(
                    f"OCR of scanned page {ocr_pages} took over {self.limits.ocr_page_seconds:g} s (time limit)"
                ) from None
            raise ParseError(f"took over {self.limits.seconds:g} s to parse (time limit)") from None
        except Stopped:
            self._kill()
            raise
        except EOFError:
            why = self._death()
            self._kill()
            raise ParseError(f"the parser crashed ({why})") from None
        return _decode(message)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            argv = [sys.executable, "-m", "storage.parsers.worker", str(self.limits.memory_mb)]
            env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT}
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
                start_new_session=True,  # Ctrl-C in a terminal reaches the CLI, which stops the child itself
            )
        return self._proc

    def _death(self) -> str:
        if self._proc is None:
            return "no reply"
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "no reply"
        if code < 0:
            return f"signal {-code}"
        if code == _OUT_OF_MEMORY:
            return f"over the {self.limits.memory_mb} MB memory limit"
        return f"exit status {code}"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]


_OUT_OF_MEMORY = 3


def _write_frame(pipe: IO[bytes], payload: bytes) -> None:
    pipe.write(_HEADER.pack(len(payload)))
    pipe.write(payload)
    pipe.flush()


def _read_frame(pipe: IO[bytes], deadline: float, should_stop: Callable[[], bool]) -> bytes:
    fd = pipe.fileno()
    buf = bytearray()
    need = _HEADER.size
    header_done = False
    while True:
        while len(buf) < need:
            if should_stop():
                raise Stopped
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(_POLL_S, left))
            if ready:
                chunk = os.read(fd, max(need - len(buf), 1 << 16))
                if not chunk:
                    raise EOFError
                buf += chunk
        if header_done:
            return bytes(buf)
        (need,) = _HEADER.unpack(bytes(buf[: _HEADER.size]))
        buf = buf[_HEADER.size :]
        header_done = True


def _decode(message: dict[str, Any]) -> list[ParsedDoc]:
    if "error" in message:
        raise ParseError(message["error"])
    return [
        ParsedDoc(
            title=d["title"],
            sections=[
                Section(s["text"], tuple(s["heading"]), s["page"], s["ocr"], s["location"]) for s in d["sections"]
            ],
            part=d["part"],
            meta=d["meta"],
        )
        for d in message["docs"]
    ]


# -- the child ------------------------------------------------------------------------------------------


def _serve(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 2**20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump the file's text to disk
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # macOS refuses this one: the clock still holds
    with contextlib.suppress(OSError):
        os.nice(5)  # parsing yields the CPU to chat
    import logging

    logging.disable(logging.CRITICAL)  # parser libraries log object details that can quote content
    from storage.parsers import ocr, parse

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    ocr.on_page = lambda: _write_frame(stdout, b'{"alive": 1}')
    while True:
        try:
            header = stdin.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            request = json.loads(stdin.read(_HEADER.unpack(header)[0]))
            data = stdin.read(_HEADER.unpack(stdin.read(_HEADER.size))[0])
            reply: dict[str, Any]
            try:
                reply = {"docs": [asdict(d) for d in parse(request["name"], data)]}
            except ParseError as exc:
                reply = {"error": str(exc)}
            except MemoryError:
                reply = {"error": f"needs over {memory_mb} MB to parse (memory limit)"}
            except RecursionError:
                reply = {"error": "too complex to parse (RecursionError)"}
            except Exception as exc:  # a parser bug: the type only, never the message (it can quote content)
                reply = {"error": f"could not parse ({type(exc).__name__})"}
            del data
            # ASCII escapes: a lone surrogate from a lenient decode must not make the reply unencodable.
            _write_frame(stdout, json.dumps(reply).encode())
        except MemoryError:  # reading the request or encoding the reply: the parent reports the limit
            os._exit(_OUT_OF_MEMORY)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
