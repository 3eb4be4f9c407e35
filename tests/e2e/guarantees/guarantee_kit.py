"""Shared tools of the guarantees suite: run the real CLI in a sealed environment, and look for leaks.

Every command runs as `python -m desktop.cli ...` with its own HEARTH_HOME, TMPDIR, HOME and XDG dirs, all
inside one sandbox folder, so "scan everything the app could have written" is "scan the sandbox". Optionally
each command runs under `strace -f -e trace=connect`, logging every connect() of every thread and child.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from storage.cpu import AVX2_ONLY_ENV
from tests.fixtures.child_env import ROOT, pythonpath

PASSPHRASE = "guarantees: a long enough passphrase"
CANARY = "Quxvolt-canary-4e91b7 marzipan heliograph"


# --- the sandboxed CLI -----------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """One user's world: HEARTH_HOME, TMPDIR and HOME under `root`; `strace_dir` set = trace every command."""

    root: Path
    strace_dir: Path | None = None
    passphrase: str = PASSPHRASE
    extra_env: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def __post_init__(self) -> None:
        for sub in ("home", "tmp", "user", "user/.cache", "user/.config"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if self.strace_dir is not None:
            self.strace_dir.mkdir(parents=True, exist_ok=True)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # The user's Hearth settings stay out; the CPU switch of a run on the AVX2 path stays in.
            if (not k.startswith(("HEARTH_", "PYTEST_")) or k == AVX2_ONLY_ENV)
            and k not in ("TMPDIR", "TEMP", "TMP", "HOME")
        }
        env.update(
            HEARTH_HOME=str(self.home),
            HEARTH_PASSPHRASE=self.passphrase,
            HEARTH_KEYRING="0",
            TMPDIR=str(self.tmp),
            HOME=str(self.root / "user"),
            XDG_CACHE_HOME=str(self.root / "user/.cache"),
            XDG_CONFIG_HOME=str(self.root / "user/.config"),
            PYTHONPATH=pythonpath(),
            PYTHONDONTWRITEBYTECODE="1",
            OMP_NUM_THREADS="2",
        )
        env.update(self.extra_env)
        return env

    def argv(self, args: tuple[str, ...], module: str = "desktop.cli", prefix: tuple[str, ...] = ()) -> list[str]:
        argv = [*prefix, sys.executable, "-m", module, *args]
        if self.strace_dir is not None:
            self._count += 1
            log = self.strace_dir / f"{self._count:02d}-{(args or ('gui',))[0]}.strace"
            argv = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(log), *argv]
        return argv

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 900, prefix: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args, prefix=prefix),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=ROOT,
            timeout=timeout,
        )

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run and require exit 0 and no traceback; the failure message carries stderr."""
        done = self.run(*args, stdin=stdin, timeout=timeout)
        assert done.returncode == 0, f"hearth {' '.join(args)} -> {done.returncode}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        return done

    def popen(
        self, *args: str, module: str = "desktop.cli", stdin: int | None = subprocess.DEVNULL
    ) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(args, module=module),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env(),
            cwd=ROOT,
        )

    @contextlib.contextmanager
    def store(self) -> Iterator[object]:
        """The sandbox's Store opened in this process (HEARTH_HOME swapped in for the duration)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HEARTH_HOME", str(self.home))
            patch.setenv("HEARTH_KEYRING", "0")
            from storage.store import Store

            with Store.open(self.passphrase) as opened:
                yield opened

    def link_base_cache(self, converted: Path) -> None:
        """Reuse the session's GGUF->torch conversion (public weights) instead of a minute of converting."""
        cache = self.home / "cache"
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        link = cache / converted.name
        if not link.exists():
            link.symlink_to(converted, target_is_directory=True)


# --- leak scanning -------------------------------------------------------------------------------------------


def canary_patterns(canary: str) -> dict[str, bytes]:
    """The canary as it would appear in a file: UTF-8, UTF-16 LE/BE, and base64 at each of 3 byte offsets.

    A string inside base64 data only shows up as the same characters when it starts at the same offset mod
    3; encoding it behind 0, 1 and 2 filler bytes and dropping the edge characters covers every alignment.
    """
    raw = canary.encode("utf-8")
    forms = {"utf-8": raw, "utf-16-le": canary.encode("utf-16-le"), "utf-16-be": canary.encode("utf-16-be")}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        start = {0: 0, 1: 2, 2: 3}[pad]  # characters that depend on the filler bytes
        end = len(encoded) - (4 if (pad + len(raw)) % 3 else 0)  # last group may mix with what follows
        forms[f"base64+{pad}"] = encoded[start:end]
        forms[f"base64url+{pad}"] = encoded[start:end].replace(b"+", b"-").replace(b"/", b"_")
    return forms


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under root, not following symlinks (a link's target is scanned where it lives)."""
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def leaks(roots: list[Path], canary: str = CANARY) -> list[str]:
    """`path: form` for every file under the roots that holds the canary in any encoded form."""
    patterns = canary_patterns(canary)
    hits = []
    for root in roots:
        for path in walk_files(root):
            try:
                data = path.read_bytes()
            except OSError as err:
                hits.append(f"{path}: unreadable ({err})")
                continue
            hits += [f"{path}: {name}" for name, form in patterns.items() if form in data]
    return hits


def files_starting_with(roots: list[Path], magic: bytes) -> list[str]:
    out = []
    for root in roots:
        for path in walk_files(root):
            with path.open("rb") as f:
                if f.read(len(magic)) == magic:
                    out.append(str(path))
    return out


# --- strace ----------------------------------------------------------------------------------------------------

_CONNECT = re.compile(r"connect\(\d+, \{sa_family=(AF_\w+)(.*?)\}")
_INET = re.compile(r'inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')


def unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool or a permission; under CI (CI=true, set by .ci/run) fail instead: CI has them."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this check: {reason}")
    pytest.skip(reason)


def strace_available() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "true"], capture_output=True)
    return probe.returncode == 0


def connect_targets(log: Path) -> list[tuple[str, str]]:
    """(family, address) of every connect() in an strace log; address "" for non-IP families."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        match = _CONNECT.search(line)
        if not match:
            continue
        family, rest = match.groups()
        address = ""
        if (family == "AF_INET" and (m := _INET.search(rest))) or (family == "AF_INET6" and (m := _INET6.search(rest))):
            address = m.group(1)
        out.append((family, address))
    return out


def non_loopback(targets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Connections that could leave the machine: any IP family whose address is not loopback."""
    bad = []
    for family, address in targets:
        if family not in ("AF_INET", "AF_INET6"):
            continue  # AF_UNIX, AF_NETLINK, AF_UNSPEC (UDP disconnect) never leave the machine
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            bad.append((family, address or "unparsed"))
            continue
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            bad.append((family, address))
    return bad


def netns_available() -> str | None:
    """None when `unshare -n` works here; otherwise why not (the reason a test skips with)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"this sandbox forbids network namespaces (unshare -n: {probe.stderr.strip()[:200]})"
    return None


# --- the canary corpus ----------------------------------------------------------------------------------------

_WORDS = [
    "harbour",
    "lantern",
    "copper",
    "ledger",
    "tide",
    "quay",
    "brindle",
    "moss",
    "sprocket",
    "thimble",
    "fern",
    "glass",
    "marrow",
    "vane",
    "gull",
    "hook",
    "drizzle",
    "ditch",
    "salt",
    "moon",
    "bread",
    "snail",
    "whistle",
    "barter",
    "polish",
    "weigh",
    "count",
    "sing",
    "bury",
    "keep",
    "mark",
    "well",
]


def prose(rng: object, sentences: int, canary_every: int = 4) -> str:
    """Made-up but regular prose (a style LoRA can learn), with the canary every few sentences."""
    import random

    assert isinstance(rng, random.Random)
    out = []
    for i in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 14))]
        sentence = " ".join(words).capitalize() + "."
        if i % canary_every == 0:
            sentence += f" The keeper's password is {CANARY}."
        out.append(sentence)
    return " ".join(out)


def docs_corpus():  # type: ignore[no-untyped-def]
    """The document tests' corpus module (hand-written PDF, DOCX, zip-bomb writers), loaded by path."""
    import importlib.util

    if "docs_corpus" in sys.modules:
        return sys.modules["docs_corpus"]
    spec = importlib.util.spec_from_file_location("docs_corpus", ROOT / "tests/data/docs/corpus.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["docs_corpus"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_canary_corpus(folder: Path, seed: int = 9, sentences_per_file: int = 60) -> Path:
    """One file per everyday format (.md .txt .html .eml .docx .pdf), each bearing the canary."""
    import random
    from email.message import EmailMessage

    corpus = docs_corpus()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.md").write_text(
        f"# Keeper's notes\n\n## The vault\n\nThe vault phrase is {CANARY}.\n\n{prose(rng, sentences_per_file)}\n"
    )
    (folder / "diary.txt").write_text(f"Diary. {prose(rng, sentences_per_file)}\n")
    (folder / "page.html").write_text(
        f"<html><head><title>Keeper</title></head><body><h1>Keeper</h1><p>{prose(rng, sentences_per_file)}</p>"
        "</body></html>"
    )
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "The vault phrase", "keeper@example.com", "me@example.com"
    mail["Date"] = "Tue, 03 Sep 2024 10:00:00 +0000"
    mail.set_content(f"Hello,\n\n{prose(rng, sentences_per_file)}\n")
    (folder / "letter.eml").write_bytes(bytes(mail))
    corpus.write_docx(folder / "report.docx", [(1, "Keeper report"), (0, prose(rng, 20))])
    corpus.write_pdf(folder / "scan.pdf", [prose(rng, 6), prose(rng, 6)])
    return folder
