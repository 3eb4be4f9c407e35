"""Personalization as a job another process can watch and steer: status file, control file, low priority.

Whoever runs the training (the CLI in the foreground, or the app through `spawn`, which starts
`python -m personalize.job` at low priority) writes `personalize.status.json` in `paths.run_dir()` (pid,
state, step, loss, tokens/s, ETA: numbers only, never user content) and polls `personalize.control` once per
step. Files rather than signals: they work the same on every OS and survive the reader being a different
program. Pause checkpoints (encrypted) and exits, which also gives the memory back; resume is simply a new
run, which continues from that checkpoint. Cancel drops the checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from storage import paths
from storage.errors import KnownError, disk_full

STATUS_FILE = "personalize.status.json"
CONTROL_FILE = "personalize.control"
LIVE_STATES = ("starting", "loading", "training", "evaluating")
SECRET_ENV = ("HEARTH_PASSPHRASE", "HEARTH_NEW_PASSPHRASE")  # never inherited by the trainer


def status_path() -> Path:
    return paths.run_dir() / STATUS_FILE


def control_path() -> Path:
    return paths.run_dir() / CONTROL_FILE


def request(action: str | None) -> None:
    """Ask the running job to "pause" or "cancel" at its next step; None clears a pending request."""
    if action is None:
        control_path().unlink(missing_ok=True)
        return
    if action not in ("pause", "cancel"):
        raise ValueError(action)
    _write_atomic(control_path(), action)


def requested() -> str | None:
    try:
        value = control_path().read_text().strip()
    except OSError:
        return None
    return value or None


def write_status(**fields: Any) -> None:
    fields.setdefault("pid", os.getpid())
    fields["updated"] = time.time()
    _write_atomic(status_path(), json.dumps(fields))


def read_status() -> dict[str, Any]:
    """The last status written, with `alive`; a live state whose process is gone reads as "interrupted"."""
    try:
        status: dict[str, Any] = json.loads(status_path().read_text())
    except (OSError, ValueError):
        return {"state": "idle", "alive": False}
    status["alive"] = alive(int(status.get("pid", 0)))
    if status.get("state") in LIVE_STATES and not status["alive"]:
        status["state"] = "interrupted"
    return status


def running() -> dict[str, Any] | None:
    status = read_status()
    return status if status["alive"] and status.get("state") in LIVE_STATES else None


def cancel(store: Callable[[], Any]) -> Literal["requested", "dropped"]:
    """Cancel personalization, the one policy for the CLI and the window: a running job is asked to stop
    at its next step and discard its checkpoint ("requested"); with none running, the saved checkpoint is
    discarded here ("dropped"). `store` is called only then (it may ask for the passphrase)."""
    if running() is not None:
        request("cancel")
        return "requested"
    from personalize.registry import Registry

    Registry(store()).drop_checkpoint()
    write_status(state="cancelled", pid=0)
    return "dropped"


def should_stop(pause_on_battery: bool = False) -> Callable[[], str | None]:
    """The trainer's stop check: a control-file request, or running on battery when asked to avoid it."""

    def check() -> str | None:
        action = requested()
        if action:
            return action
        if pause_on_battery and on_battery():
            return "pause"
        return None

    return check


def on_battery() -> bool:
    import psutil

    try:
        battery = psutil.sensors_battery()
    except (NotImplementedError, OSError):
        return False
    return bool(battery is not None and not battery.power_plugged)


def claim() -> None:
    """Refuse to start while another personalization job is alive; clear stale requests."""
    live = running()
    if live is not None and live.get("pid") != os.getpid():
        raise KnownError(
            f"Personalization is already running (process {live['pid']}); see `hearth personalize status`."
        )
    request(None)
    write_status(state="starting")


def lower_priority() -> None:
    """Chat must stay responsive: the trainer yields the CPU to it."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)


def spawn(
    max_minutes: float = 0.0, passphrase: str | None = None, gguf: Path | None = None, config: str | None = None
) -> int:
    """Start the background job; the passphrase (if the store needs one) goes through a pipe, not argv/env."""
    live = running()
    if live is not None:
        raise KnownError(f"Personalization is already running (process {live['pid']}).")
    if passphrase is None:
        passphrase = os.environ.get("HEARTH_PASSPHRASE")  # through the pipe, not the inherited environment
    argv = [sys.executable, "-m", "personalize.job", "--max-minutes", str(max_minutes)]
    if gguf is not None:
        argv += ["--model", str(gguf)]
    if config is not None:
        argv += ["--config", config]
    if passphrase is not None:
        argv.append("--passphrase-stdin")
    log = (paths.logs() / "personalize.log").open("ab")
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}  # the secret goes through the pipe only
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=log, stderr=log, env=env, start_new_session=True, close_fds=True
    )
    assert process.stdin is not None
    if passphrase is not None:
        process.stdin.write(passphrase.encode() + b"\n")
    process.stdin.close()
    log.close()
    return process.pid


def run(
    store: Any,
    max_minutes: float = 0.0,
    gguf: Path | None = None,
    pause_on_battery: bool = False,
    progress: Callable[[Any], None] = lambda p: None,
    cfg: Any = None,
) -> Any:
    """One run under job control (used by the CLI in the foreground and by `main` in the background)."""
    from personalize import pipeline
    from personalize.train import TrainConfig

    claim()

    def report(p: Any) -> None:
        write_status(
            state=p.state,
            step=p.step,
            max_steps=p.max_steps,
            loss=_finite(p.loss),
            tokens_per_s=round(p.tokens_per_s, 1),
            eta_s=_finite(p.eta_s),
            tokens_seen=p.tokens_seen,
        )
        progress(p)

    try:
        result = pipeline.run(
            store,
            cfg or TrainConfig(max_minutes=max_minutes),
            gguf,
            progress=report,
            should_stop=should_stop(pause_on_battery),
        )
    except KnownError as err:
        write_status(state="failed", error=str(err))
        raise
    except BaseException:
        write_status(state="failed", error="internal error (see the log)")
        raise
    finally:
        request(None)
    write_status(
        state=result.state,
        adapter=result.adapter_id,
        base_ppl=result.base_ppl,
        adapter_ppl=result.adapter_ppl,
        drift=result.drift,
        steps=result.steps,
        tokens_trained=result.tokens_trained,
        train_tokens=result.train_tokens,  # a count, for `hearth models list`'s run-time estimate
        refused=result.refused,  # why an adapter that scored better was not activated (numbers only)
        seconds=round(result.seconds, 1),
        near_duplicates=result.near_duplicates,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point of the background process (`python -m personalize.job`)."""
    from storage.hardening import disable_core_dumps
    from storage.offline import ensure_offline

    disable_core_dumps()  # it will hold the key and decrypted training text
    ensure_offline()
    warnings.simplefilter("ignore", FutureWarning)  # libraries' deprecation notices are not for the user
    parser = argparse.ArgumentParser(prog="personalize.job")
    parser.add_argument("--max-minutes", type=float, default=0.0)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--passphrase-stdin", action="store_true")
    parser.add_argument("--pause-on-battery", action="store_true")
    parser.add_argument("--config", help="TrainConfig fields as JSON (tuning and tests)")
    args = parser.parse_args(argv)
    passphrase = sys.stdin.readline().rstrip("\n") if args.passphrase_stdin else None
    lower_priority()
    from personalize.train import TrainConfig
    from storage.store import Store

    fields = json.loads(args.config) if args.config else {}
    if "target_modules" in fields:
        fields["target_modules"] = tuple(fields["target_modules"])
    cfg = TrainConfig(**{"max_minutes": args.max_minutes, **fields})
    try:
        with Store.open(passphrase) as store:
            run(store, args.max_minutes, args.model, args.pause_on_battery, cfg=cfg)
    except Exception as err:
        known = err if isinstance(err, KnownError) else disk_full(err)
        if known is None:
            raise
        print(f"personalize: {known}", file=sys.stderr)
        return 1
    return 0


def alive(pid: int) -> bool:
    """Whether process `pid` runs; an exited child not yet reaped (a zombie) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie (exited child not yet reaped) is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _finite(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else round(float(value), 4)


def _write_atomic(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, target)


if __name__ == "__main__":
    sys.exit(main())
