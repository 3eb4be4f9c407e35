"""kill -9 during a bulk write: the database is intact and every committed row is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from storage.store import Store
from tests.fixtures.child_env import pythonpath

WRITER = r"""
import sys
from storage.store import Store

store = Store.open()
conversation = store.chats.create("bulk")
print("conversation", conversation, flush=True)
batch = 0
while True:
    ids = []
    with store.db.atomic():
        for _ in range(50):
            ids.append(store.chats.add_message(conversation, "user", f"row of batch {batch} " + "x" * 500))
    print("committed", *ids, flush=True)  # only after COMMIT returned
    batch += 1
"""


def test_sigkill_during_bulk_write_loses_no_committed_row(store: Store, hearth_home: Path) -> None:
    store.close()
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    committed: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("committed"):
                committed += [int(x) for x in line.split()[1:]]
                if len(committed) >= 2000:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert len(committed) >= 2000

    with Store.open() as reopened:
        assert reopened.integrity_check() == ["ok"]
        present = {row[0] for row in reopened.db.execute("SELECT id FROM messages").fetchall()}
        assert set(committed) <= present
        assert reopened.chats.search("batch 3")
