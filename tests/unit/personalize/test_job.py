"""Job control through run-dir files: requests, status, and a dead trainer reading as interrupted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from personalize import job
from storage.errors import KnownError


def test_requests_round_trip_and_clear() -> None:
    assert job.requested() is None
    job.request("pause")
    assert job.requested() == "pause"
    assert job.should_stop()() == "pause"
    job.request(None)
    assert job.requested() is None and job.should_stop()() is None


def test_status_of_a_dead_trainer_reads_interrupted() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    job.write_status(state="training", pid=proc.pid, step=3)
    status = job.read_status()
    assert status["state"] == "interrupted" and status["alive"] is False and status["step"] == 3


def test_second_job_is_refused_while_one_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        job.write_status(state="training", pid=proc.pid)
        with pytest.raises(KnownError, match="already running"):
            job.claim()
    finally:
        proc.kill()
        proc.wait()
    job.claim()
    assert job.read_status()["state"] == "starting"
