"""Personalization against a real encrypted store: the full pipeline, the registry, resume after kill -9,
and a canary scan proving no plaintext text, adapter or checkpoint reaches the disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CANARY = "Zorblatt-canary-5c1e"
SMALL = {"seq_len": 64, "batch_size": 2, "warmup_steps": 2, "lr": 3e-3, "threads": 1}  # 1 thread: robust on busy CI


def fill(store: Any, documents: list[tuple[str, str]]) -> None:
    """Conversations in the store, every user message carrying the canary."""
    for doc_id, text in documents:
        conversation = store.chats.create(title=doc_id)
        for paragraph in text.split("\n\n"):
            store.chats.add_message(conversation, "user", f"{CANARY} {paragraph}")
            store.chats.add_message(conversation, "assistant", "Logged.")


def scan(roots: list[Path], needles: list[bytes]) -> list[str]:
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {n[:20]!r}" for n in needles if n in data]
    return hits


def test_pipeline_trains_registers_activates_and_leaves_no_plaintext(
    store: Any,
    base_cache: Path,
    general_cached: None,
    ledger_documents: list[tuple[str, str]],
    hearth_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from personalize import drift, pipeline, registry
    from personalize.train import TrainConfig

    fill(store, ledger_documents)
    private_tmp = tmp_path / "tmp"  # this test's own temp dir: other processes' temp files are not ours
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    report = pipeline.run(store, TrainConfig(**{**SMALL, "lr": 1e-3}, max_steps=10))  # gentle: drift stays low
    assert report.adapter_ppl < report.base_ppl
    # The forgetting guard decides activation: this narrow made-up corpus may drift past the limit.
    assert report.state == ("refused" if report.drift > drift.DRIFT_LIMIT else "activated"), report
    reg = registry.Registry(store)
    if report.state == "refused":
        assert reg.active() is None
        reg.set_active(report.adapter_id)  # the user's explicit choice (`hearth adapters use --force`)
    records = reg.list()
    assert [r.id for r in records] == [report.adapter_id] and records[0].active
    # the proof kept with the version: gain, drift, time and three held-out passages continued before/after
    record = records[0]
    assert record.drift is not None and record.seconds and record.heldout_tokens == report.heldout_tokens
    assert len(record.samples) == 3 and all(s["prompt"] and s["truth"] for s in record.samples)
    assert any(CANARY in s["prompt"] + s["truth"] for s in record.samples)  # user text: the scan below covers it
    gguf = reg.gguf_bytes(report.adapter_id)
    assert reg.checkpoint() is None  # a finished run drops its checkpoint

    # canary text, adapter (its tag and its last tensor bytes) and checkpoint (a key of its state dict)
    needles = [CANARY.encode(), CANARY.encode("utf-16-le"), b"hearth.base_sha256", b"data_fingerprint", gguf[-4096:]]
    assert scan([hearth_home, private_tmp], needles) == []

    # switching: off, rollback, delete
    reg.set_active(None)
    assert reg.active() is None
    assert reg.rollback() == report.adapter_id
    reg.delete(report.adapter_id)
    assert reg.list() == [] and reg.active() is None


def test_kill_9_mid_training_resumes_from_last_checkpoint(
    store: Any, base_cache: Path, general_cached: None, ledger_documents: list[tuple[str, str]]
) -> None:
    from personalize import job, registry
    from personalize.train import TrainConfig, load_checkpoint

    fill(store, ledger_documents)
    config = {**SMALL, "max_steps": 400, "checkpoint_every_s": 0}
    proc = subprocess.Popen(
        [sys.executable, "-m", "personalize.job", "--config", json.dumps(config)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600
        while (job.read_status().get("step") or 0) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert job.read_status()["state"] == "interrupted"
    saved = load_checkpoint(registry.Registry(store).checkpoint() or b"")
    assert saved["step"] >= 2

    steps: list[int] = []
    report = job.run(
        store, progress=lambda p: steps.append(p.step), cfg=TrainConfig(**{**config, "max_steps": saved["step"] + 2})
    )
    trained_steps = [s for s in steps if s > 0]
    assert trained_steps[0] == saved["step"] + 1  # continued, did not start over
    assert report.steps == saved["step"] + 2
    assert job.read_status()["state"] in ("activated", "kept", "refused")
