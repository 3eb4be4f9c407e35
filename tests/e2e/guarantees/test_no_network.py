"""No network: the journey never connects off the machine, and Hearth works with no network at all.

Two independent checks. strace records every connect() of every process and thread the journey started
(AF_UNIX and loopback are allowed: the local API and its client). And `unshare -n` runs add, search and ask
in a network namespace that has no interfaces (not even an up loopback): they must still work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import guarantee_kit as kit
import pytest


def _need_strace() -> None:
    if not kit.strace_available():
        kit.unavailable(
            "strace is missing or cannot trace here (ptrace forbidden): install strace (apt-get install strace)"
        )


@pytest.mark.slow
def test_the_journey_connects_nowhere_but_loopback(journey) -> None:  # type: ignore[no-untyped-def]
    _need_strace()
    logs = sorted(journey.strace_dir.glob("*.strace"))
    names = {log.name.split("-", 1)[1].removesuffix(".strace") for log in logs}
    assert {"add", "ask", "chat", "personalize", "serve", "rekey"} <= names, names
    targets = {log.name: kit.connect_targets(log) for log in logs}
    outside = {name: kit.non_loopback(found) for name, found in targets.items() if kit.non_loopback(found)}
    assert outside == {}, f"connections off the machine: {outside}"


def test_the_strace_audit_can_fail(tmp_path: Path) -> None:
    """A process that does connect out (a UDP connect sends no packet) is caught by the same parser."""
    _need_strace()
    log = tmp_path / "probe.strace"
    probe = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('192.0.2.7', 53))\n"
        "t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
        "try: t.connect(('2001:db8::1', 53))\n"
        "except OSError: pass\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('127.0.0.1', 9))\n"
    )
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(log), sys.executable, "-c", probe], check=True
    )
    targets = kit.connect_targets(log)
    assert ("AF_INET", "127.0.0.1") in targets
    assert ("AF_INET", "192.0.2.7") in kit.non_loopback(targets)
    assert ("AF_INET6", "2001:db8::1") in kit.non_loopback(targets)
    assert ("AF_INET", "127.0.0.1") not in kit.non_loopback(targets)


@pytest.mark.slow
def test_add_search_and_ask_work_without_any_network(tmp_path: Path) -> None:
    reason = kit.netns_available()
    if reason:
        kit.unavailable(reason)
    sb = kit.Sandbox(tmp_path / "world")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vault.md").write_text(f"# Vault\n\nThe vault phrase is {kit.CANARY}. It opens the copper door.\n")
    offline = ("unshare", "-n")

    links = subprocess.run(["unshare", "-n", "ip", "-o", "link", "show", "up"], capture_output=True, text=True)
    assert links.stdout.strip() == "", f"the namespace has interfaces up: {links.stdout}"

    added = sb.run("add", str(folder), "--json", prefix=offline)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == 1 and json.loads(added.stdout)["pending_vectors"] == 0
    found = sb.run("search", "vault phrase copper door", "--json", prefix=offline)
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(found.stdout)[0]["source"]).name == "vault.md"
    asked = sb.run("ask", "--docs", "--json", "--temperature", "0", "--max-tokens", "32", "What opens the copper door?",
                   prefix=offline)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert reply["answer"] and Path(reply["sources"][0]["source"]).name == "vault.md"


def test_models_scan_add_and_list_open_no_socket(tmp_path: Path) -> None:
    """Finding and registering the models other apps downloaded reads files only: not one connect()."""
    _need_strace()
    import os
    import shutil

    from desktop.engine.models import bundled_model_path

    sb = kit.Sandbox(tmp_path / "world", strace_dir=tmp_path / "strace")
    found = sb.root / "user" / ".lmstudio" / "models" / "org" / "repo" / "found.gguf"
    found.parent.mkdir(parents=True)
    try:
        os.link(bundled_model_path(), found)
    except OSError:
        shutil.copyfile(bundled_model_path(), found)
    scanned = sb.ok("models", "scan", "--json")
    assert [m["name"] for m in json.loads(scanned.stdout)] == ["org/repo/found.gguf"]
    sb.ok("models", "add", "org/repo/found.gguf")
    assert "found" in sb.ok("models", "list").stdout
    logs = sorted((tmp_path / "strace").glob("*.strace"))
    assert len(logs) == 3
    assert {log.name: kit.connect_targets(log) for log in logs} == {log.name: [] for log in logs}
