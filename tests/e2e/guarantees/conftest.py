"""The guarantees suite's shared user journey: run once per session, then every claim is checked against it.

The journey is what a new user does in their first hour, through the real CLI, with a canary string in
every document and chat: set a passphrase, add a folder (.md .txt .html .eml .docx .pdf), ask about it,
chat, personalize for a minute, switch the adapter on, call the local API once, rotate the key and change
the passphrase. When strace works here, every command runs under `strace -f -e trace=connect`.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import guarantee_kit as kit


@dataclass
class Journey:
    sandbox: kit.Sandbox
    corpus: Path
    converted_base: Path
    strace_dir: Path | None
    outputs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    adapter_id: str = ""
    api_reply: dict = field(default_factory=dict)
    token: str = ""


def _serve_once(sb: kit.Sandbox, token: str) -> dict:
    """`hearth serve --port 0` in the background, one grounded chat completion, then SIGTERM."""
    import httpx
    import psutil

    server = sb.popen("serve", "--port", "0")
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/v1)", line)
        assert match, f"serve did not start: {line!r} {server.stderr.read().decode()[-2000:] if server.poll() else ''}"
        body = {
            "model": "hearth",
            "messages": [{"role": "user", "content": f"What is the keeper's password? Is it {kit.CANARY}?"}],
            "temperature": 0,
            "max_tokens": 32,
            "hearth_docs": True,
            "hearth_save": True,
        }
        response = httpx.post(
            f"{match.group(1)}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        assert response.status_code == 200, response.text
        # Under strace the server is strace's child: signal the Python process so it stops cleanly.
        children = psutil.Process(server.pid).children(recursive=True)
        target = next((c.pid for c in children if "python" in c.name().lower()), server.pid)
        psutil.Process(target).send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0
        return response.json()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _remember_general_answers(sb: kit.Sandbox, general_answers) -> None:  # type: ignore[no-untyped-def]
    """Put the session's base answers to the public general prompts in this store's (encrypted) cache.

    As after a user's first personalization: `hearth personalize` then skips regenerating 40 answers in
    llama.cpp, which on a loaded CI machine took the journey past the per-test timeout. Drift is still
    measured (base and adapter both score the answers) and the guard still decides activation.
    """
    from personalize import drift
    from storage.store import Store

    with pytest.MonkeyPatch.context() as patch:
        for name, value in sb.env().items():
            if name.startswith("HEARTH_"):
                patch.setenv(name, value)
        store = Store.open()
        try:
            drift.remember(store, *general_answers)
        finally:
            store.close()


@pytest.fixture(scope="session")
def journey(tmp_path_factory: pytest.TempPathFactory, converted_base_dir: Path, general_answers) -> Journey:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("journey")
    strace_dir = base / "strace" if kit.strace_available() else None
    sb = kit.Sandbox(base / "world", strace_dir=strace_dir)
    sb.link_base_cache(converted_base_dir)
    corpus = kit.write_canary_corpus(base / "world" / "documents")
    j = Journey(sb, corpus, converted_base_dir, strace_dir)
    out = j.outputs

    out["add"] = sb.ok("add", str(corpus), "--json")
    _remember_general_answers(sb, general_answers)
    out["ask"] = sb.ok(
        "ask", "--docs", "--json", "--temperature", "0", "--max-tokens", "48", "What is the vault phrase?"
    )
    chat_script = f"Remember this phrase: {kit.CANARY}.\nWhich phrase did I ask you to remember?\n/quit\n"
    out["chat"] = sb.ok("chat", "--temperature", "0", "--max-tokens", "24", stdin=chat_script)
    out["personalize"] = sb.ok("personalize", "--max-minutes", "1")
    out["adapters"] = sb.ok("adapters", "list", "--json")
    j.adapter_id = json.loads(out["adapters"].stdout)[0]["id"]
    # --force: a one-minute run on the canary corpus may drift past the forgetting guard's limit; this journey
    # checks what an active adapter leaves on disk, not whether the guard would have chosen it.
    out["use"] = sb.ok("adapters", "use", j.adapter_id, "--force")
    out["status"] = sb.ok("personalize", "status", "--json")
    j.token = sb.ok("api-token").stdout.strip()
    j.api_reply = _serve_once(sb, j.token)
    out["rekey"] = sb.ok("rekey")
    new_passphrase = "guarantees: the new passphrase"
    sb.extra_env["HEARTH_NEW_PASSPHRASE"] = new_passphrase
    out["passphrase"] = sb.ok("passphrase")
    del sb.extra_env["HEARTH_NEW_PASSPHRASE"]
    sb.passphrase = new_passphrase
    out["history"] = sb.ok("history", "--json")
    out["search"] = sb.ok("history", "--search", "marzipan", "--json")
    return j
