"""No data loss: `kill -9` at seeded random points during ingestion, chat and training.

After every kill the store is opened in this process: `integrity_check` must be ok, everything that was
acknowledged before the kill must still be there, and the next run must carry on from where the killed one
stopped. "Acknowledged" is what the user could have seen: a document committed (visible in the store), a
piece of an answer printed on the terminal, a training step reported together with its checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import guarantee_kit as kit
import psutil
import pytest

pytestmark = pytest.mark.slow

SEEDS = (11, 22, 33)


def _wait_store_open(proc: subprocess.Popen, home: Path, limit_s: float = 300) -> bool:
    """Until `proc` (or a child, under strace) holds hearth.db open: the kill should land after startup."""
    db = str(home / "hearth.db")
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            if any(f.path == db for p in procs for f in p.open_files()):
                return True
        except psutil.Error:
            pass
        time.sleep(0.05)
    return False


def _sleep_unless_exited(proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


# --- ingestion ---------------------------------------------------------------------------------------------


def _expected_chunks(folder: Path) -> dict[str, int]:
    """Chunks each file must have once indexed, computed with the same parser and chunker in-process."""
    from storage.chunking import chunk_document
    from storage.parsers import parse

    return {
        str(p.resolve()): sum(len(chunk_document(d)) for d in parse(p.name, p.read_bytes()))
        for p in sorted(folder.iterdir())
    }


def _indexed(sb: kit.Sandbox) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """(path -> (chunks, embedded)) and the integrity check's rows, from the store opened in-process."""
    from storage.documents import Documents

    with sb.store() as store:
        integrity = store.integrity_check()
        files = Documents(lambda: store.db).list()
        paths = [row[0] for row in store.db.execute("SELECT path FROM doc_files").fetchall()]
    assert len(paths) == len(set(paths)), "a file was indexed twice"
    return {f.path: (f.chunks, f.embedded) for f in files}, integrity


def test_kill_during_ingestion_loses_nothing(tmp_path: Path) -> None:
    sb = kit.Sandbox(tmp_path / "world")
    folder = tmp_path / "docs"
    folder.mkdir()
    rng = random.Random(7)
    # About 1,000 chunks: several seconds of indexing and embedding even on a fast, idle machine, so the kills
    # (up to 8 s in) land mid-work; a smaller corpus finished before the second kill once embedding got fast.
    for i in range(150):
        suffix = (".md", ".txt", ".html")[i % 3]
        body = f"Note {i}. {kit.prose(rng, 80)}"
        (folder / f"note-{i:02d}{suffix}").write_text(f"<p>{body}</p>" if suffix == ".html" else body)
    expected = _expected_chunks(folder)
    before: dict[str, tuple[int, int]] = {}
    kills = 0
    for seed in SEEDS:
        proc = sb.popen("add", str(folder))
        started = _wait_store_open(proc, sb.home)
        _sleep_unless_exited(proc, random.Random(seed).uniform(0.0, 8.0))
        kills += proc.poll() is None
        _kill(proc)
        now, integrity = _indexed(sb)
        assert integrity == ["ok"], (seed, integrity)
        for path, (chunks, _embedded) in now.items():
            assert chunks == expected[path], f"seed {seed}: {Path(path).name} is half indexed"
        for path, (_chunks, embedded) in before.items():
            assert path in now, f"seed {seed}: {Path(path).name} was committed, then lost"
            assert now[path][1] >= embedded, f"seed {seed}: vectors of {Path(path).name} were lost"
        before = now
        assert started or proc.returncode == 0
    assert kills >= 2, "the kills all landed after ingestion had finished: nothing was tested"

    done = sb.ok("add", str(folder), "--json")
    summary = json.loads(done.stdout)
    assert summary["failed"] == 0 and summary["pending_vectors"] == 0, summary
    assert summary["added"] + summary["skipped"] + summary["updated"] == len(expected)
    final, integrity = _indexed(sb)
    assert integrity == ["ok"]
    assert {p: c for p, (c, _e) in final.items()} == expected
    assert all(c == e for c, e in final.values()), "some chunks have no vector after the resumed run"


# --- chat ----------------------------------------------------------------------------------------------------


def _conversations(sb: kit.Sandbox) -> tuple[dict[int, list[tuple[str, str]]], list[str]]:
    with sb.store() as store:
        integrity = store.integrity_check()
        convs = {
            c["id"]: [(m["role"], m["content"]) for m in store.chats.messages(c["id"])] for c in store.chats.list()
        }
    return convs, integrity


def _read_until(proc: subprocess.Popen, chars: int, limit_s: float = 600) -> bytes:
    """stdout bytes until at least `chars` characters of answer arrived (or the process ended)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    data = b""
    deadline = time.monotonic() + limit_s
    while len(data.decode("utf-8", errors="ignore")) < chars and time.monotonic() < deadline:
        try:
            piece = os.read(fd, 4096)
        except BlockingIOError:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
            continue
        if not piece:
            break
        data += piece
    return data


def test_kill_while_an_answer_streams_keeps_what_was_shown(tmp_path: Path) -> None:
    sb = kit.Sandbox(tmp_path / "world")
    before: dict[int, list[tuple[str, str]]] = {}
    kills = 0
    for n, seed in enumerate(SEEDS):
        prompt = f"Write a long story, many paragraphs, about a lighthouse keeper called Ansel number {n}."
        proc = sb.popen(
            "chat", "--temperature", "0.9", "--seed", str(seed), "--max-tokens", "400", stdin=subprocess.PIPE
        )
        assert proc.stdin is not None
        proc.stdin.write((prompt + "\n").encode())
        proc.stdin.flush()  # stdin stays open: the REPL waits for the next line, never exits by itself
        shown = _read_until(proc, random.Random(seed).randint(10, 300))
        kills += proc.poll() is None
        _kill(proc)
        assert proc.stdout is not None
        shown += proc.stdout.read()  # what was written to the terminal before the kill, still in the pipe
        printed = shown.decode("utf-8", errors="ignore")
        assert printed.strip(), f"seed {seed}: no answer was streamed: {proc.stderr.read().decode()[-2000:]}"

        now, integrity = _conversations(sb)
        assert integrity == ["ok"], (seed, integrity)
        for conv_id, messages in before.items():
            assert now.get(conv_id) == messages, f"seed {seed}: conversation {conv_id} changed after a kill"
        new = [m for cid, m in now.items() if cid not in before]
        assert len(new) == 1 and new[0][0] == ("user", prompt), new
        assert len(new[0]) == 2 and new[0][1][0] == "assistant"
        saved = new[0][1][1]
        assert saved.startswith(printed.rstrip("\n")), (
            f"seed {seed}: the saved reply lacks text the user saw:\nshown: {printed!r}\nsaved: {saved!r}"
        )
        before = now
    assert kills >= 2, "every answer finished before the kill: nothing was tested"

    listed = sb.ok("history", "--json")
    assert len(json.loads(listed.stdout)) == len(SEEDS)
    more = sb.ok("chat", "--temperature", "0", "--max-tokens", "8", stdin="Still there?\n/quit\n")
    assert more.stdout.strip()


# --- training ------------------------------------------------------------------------------------------------

TRAIN_CONFIG = {
    "checkpoint_every_s": 0,  # a checkpoint after every step: each step reported is also saved
    "seq_len": 128,
    "batch_size": 2,
    "rank": 4,
    "max_steps": 12,
    "warmup_steps": 2,
    "eval_every": 0,
}


def _checkpoint_step(sb: kit.Sandbox) -> tuple[int | None, list[str], int]:
    """The step of the saved training checkpoint (None: none), the integrity check, and the document count."""
    from personalize.registry import Registry
    from personalize.train import load_checkpoint

    with sb.store() as store:
        integrity = store.integrity_check()
        blob = Registry(store).checkpoint()
        documents = store.db.execute("SELECT count(*) FROM doc_files").fetchone()[0]
    step = None if blob is None else int(load_checkpoint(blob)["step"])
    return step, integrity, documents


def _steps_until(proc: subprocess.Popen, target: int, limit_s: float = 900) -> list[int]:
    """Training steps the CLI's progress lines report (stderr), read until `target` or the end."""
    assert proc.stderr is not None
    steps: list[int] = []
    deadline = time.monotonic() + limit_s
    for raw in proc.stderr:
        match = re.search(r"step (\d+)/(\d+)", raw.decode(errors="replace"))
        if match:
            steps.append(int(match.group(1)))
            if steps[-1] >= target:
                break
        if time.monotonic() > deadline:
            break
    return steps


def _status(sb: kit.Sandbox) -> dict:
    return json.loads(sb.ok("personalize", "status", "--json").stdout)


@pytest.mark.soak  # ~15 min; tests/integration/test_personalize_store.py covers one kill -9 + resume by default
def test_kill_during_training_resumes_from_the_checkpoint(tmp_path: Path, converted_base_dir: Path) -> None:
    sb = kit.Sandbox(tmp_path / "world")
    sb.link_base_cache(converted_base_dir)
    folder = tmp_path / "docs"
    folder.mkdir()
    rng = random.Random(3)
    for i in range(4):
        (folder / f"ledger-{i}.txt").write_text(kit.prose(rng, 90))
    sb.ok("add", str(folder), "--no-embed")

    # First kill: the background job the app starts (`python -m personalize.job`), small config.
    rng = random.Random(SEEDS[0])
    job = sb.popen(
        "--max-minutes", "0", "--passphrase-stdin", "--config", json.dumps(TRAIN_CONFIG),
        module="personalize.job", stdin=subprocess.PIPE,
    )  # fmt: skip
    assert job.stdin is not None
    job.stdin.write((sb.passphrase + "\n").encode())
    job.stdin.close()
    status_file = sb.home / "run" / "personalize.status.json"
    target = rng.randint(2, 4)
    deadline = time.monotonic() + 900
    while job.poll() is None and time.monotonic() < deadline:
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("state") == "training" and status.get("step", 0) >= target:
            break
        time.sleep(0.05)
    assert job.poll() is None, f"the job ended before the kill: {job.stderr.read().decode()[-2000:]}"
    _kill(job)
    assert _status(sb)["state"] == "interrupted"
    step, integrity, documents = _checkpoint_step(sb)
    assert integrity == ["ok"] and documents == 4
    assert step is not None and step >= target - 1, step

    # Two more kills, each during `hearth personalize resume`, which must continue from the checkpoint.
    for seed in SEEDS[1:]:
        proc = sb.popen("personalize", "resume")
        reported = _steps_until(proc, step + random.Random(seed).randint(1, 3))
        _kill(proc)
        assert reported, f"no training step was reported: {proc.stderr.read().decode()[-2000:]}"
        assert reported[0] == step + 1, f"resumed at step {reported[0]}, but the checkpoint was at step {step}"
        previous = step
        step, integrity, documents = _checkpoint_step(sb)
        assert integrity == ["ok"] and documents == 4
        assert step is not None and step >= previous

    proc = sb.popen("personalize", "resume")
    reported = _steps_until(proc, 10**6)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()[-3000:]
    if step < TRAIN_CONFIG["max_steps"]:
        assert reported and reported[0] == step + 1 and reported[-1] == TRAIN_CONFIG["max_steps"], reported
    assert "adapter " in out.decode()
    assert _status(sb)["state"] in ("activated", "kept", "refused")  # refused: the drift guard's call
    assert _checkpoint_step(sb)[0] is None, "a finished run must drop its checkpoint"
    assert len(json.loads(sb.ok("adapters", "list", "--json").stdout)) == 1
