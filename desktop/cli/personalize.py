"""`hearth personalize` and `hearth adapters`: train a LoRA on the user's data, and manage adapter versions.

Thin commands over `personalize.job`, `personalize.pipeline` and `personalize.registry`. Training runs in
this process in the foreground (the app runs the same job in the background via `personalize.job.spawn`);
`status|pause|resume|cancel` talk to whichever process is training through the job's run-dir files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from desktop.services import Services
from storage.errors import KnownError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("personalize", help="teach the model your style from your documents and chats")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="training time budget (default: no limit)")
    parser.add_argument("--pause-on-battery", action="store_true", help="pause when the computer runs on battery")
    parser.add_argument("--background", action="store_true", help="train in a low-priority background process")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    status = actions.add_parser("status", help="state of the last run and the proof for every adapter version")
    status.add_argument("--json", action="store_true")
    actions.add_parser("pause", help="checkpoint the running training and stop it")
    resume = actions.add_parser("resume", help="continue a paused or interrupted training")
    resume.add_argument("--max-minutes", type=float, default=0.0, dest="resume_minutes")
    resume.add_argument("--background", action="store_true", dest="resume_background")
    actions.add_parser("cancel", help="stop training and throw its checkpoint away")
    evaluate = actions.add_parser("eval", help="perplexity of files under the base model and the active adapter")
    evaluate.add_argument("files", nargs="+", type=Path)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument(
        "--runtime",
        choices=("auto", "torch", "llama.cpp"),
        default="auto",
        help="auto (default): torch once the base is converted (faster), else llama.cpp; they agree within 2%%",
    )
    parser.set_defaults(func=personalize_command)

    adapters = sub.add_parser("adapters", help="list, switch, turn off or delete personal adapters")
    which = adapters.add_subparsers(dest="action", metavar="ACTION")
    listing = which.add_parser("list", help="adapter versions (default)")
    listing.add_argument("--json", action="store_true")
    use = which.add_parser("use", help="make an adapter active")
    use.add_argument("id")
    use.add_argument("--force", action="store_true", help="use it even though it drifted past the limit")
    which.add_parser("off", help="chat with the base model")
    which.add_parser("rollback", help="go back to the previously active adapter")
    delete = which.add_parser("delete", help="delete an adapter version")
    delete.add_argument("id")
    adapters.set_defaults(func=adapters_command)


def personalize_command(args: argparse.Namespace, services: Services) -> int:
    from personalize import job

    action = args.action
    if action == "status":
        return _status(args, services)
    if action == "pause":
        if job.running() is None:
            raise KnownError("No personalization is running.")
        job.request("pause")
        print("pausing: the trainer saves a checkpoint at its next step, then stops")
        return 0
    if action == "cancel":
        if job.cancel(services.store) == "requested":
            print("cancelling: the trainer stops at its next step and discards its checkpoint")
        else:
            print("cancelled: the saved checkpoint was discarded")
        return 0
    if action == "eval":
        return _eval(args, services)
    minutes = args.resume_minutes if action == "resume" else args.max_minutes
    background = args.resume_background if action == "resume" else args.background
    if background:
        pid = job.spawn(minutes, passphrase=services.unlocking_passphrase(), gguf=services.chat_model_path())
        print(f"personalization started in the background (process {pid}); see `hearth personalize status`")
        return 0
    bar = _ProgressBar()
    try:
        report = job.run(services.store(), minutes, services.chat_model_path(), args.pause_on_battery, bar)
    finally:
        bar.close()
    if report.state in ("paused", "cancelled"):
        print(
            f"{report.state} after {report.steps} steps"
            + ("; `hearth personalize resume` continues" if report.state == "paused" else "")
        )
        return 0
    from personalize import proof
    from personalize.registry import Registry

    record = Registry(services.store()).get(report.adapter_id)
    print(f"adapter {record.id}: {proof.summary(record)}")
    if report.state == "activated":
        print("it is now active in chat")
    elif report.refused:
        print(report.refused)
    else:
        print(f"it was kept but not switched to: {record.refused}")
    for warning in proof.warnings(record):
        print(f"warning: {warning}")
    return 0


def adapters_command(args: argparse.Namespace, services: Services) -> int:
    from personalize.registry import Registry

    registry = Registry(services.store())
    action = args.action or "list"
    if action == "use":
        record = registry.get(args.id)
        from personalize.drift import DRIFT_LIMIT

        if record.drift is not None and record.drift > DRIFT_LIMIT and not args.force:
            raise KnownError(
                f"Adapter {args.id} changed the model's general answers too much (drift {record.drift:.2f}x, "
                f"limit {DRIFT_LIMIT:.2f}x); add --force to use it anyway."
            )
        _check_loads(services, registry, args.id)
        registry.set_active(args.id)
        print(f"adapter {args.id} is now active")
    elif action == "off":
        registry.set_active(None)
        print("adapters off: chatting with the base model")
    elif action == "rollback":
        previous = registry.rollback()
        print(f"adapter {previous} is active again" if previous else "adapters off: back to the base model")
    elif action == "delete":
        registry.delete(args.id)
        print(f"deleted adapter {args.id}")
    else:
        records = registry.list()
        if getattr(args, "json", False):
            print(json.dumps([{**r.__dict__, "improvement": r.improvement} for r in records], indent=2))
            return 0
        if not records:
            print("no adapters yet: run `hearth personalize`")
        for r in records:
            mark = "*" if r.active else " "
            drift = f"drift {r.drift:5.3f}x" if r.drift is not None else "drift   n/a "
            print(
                f"{mark} {r.id}  ppl {r.base_ppl:7.2f} -> {r.adapter_ppl:7.2f} ({100 * r.improvement:+5.1f}%)  "
                f"{drift}  {r.tokens_trained:>9} tokens  {r.created[:16].replace('T', ' ')}"
            )
    return 0


def _check_loads(services: Services, registry: Any, adapter_id: str) -> None:
    """Refuse to activate an adapter whose blob is corrupt or made for another base model."""
    from personalize import base, export_gguf

    data = registry.gguf_bytes(adapter_id)
    export_gguf.check_adapter(data, base.inspect(services.chat_model_path()))


def _status(args: argparse.Namespace, services: Services) -> int:
    """The job's state (status file: numbers only) plus every version's proof (encrypted store: has samples)."""
    from personalize import job, proof
    from personalize.registry import Registry

    status = job.read_status()
    try:
        records = Registry(services.store()).list()
    except KnownError as err:  # the store is locked or needs a passphrase: the job's state is still useful
        records, status["versions_error"] = None, str(err)
    if args.json:
        status["versions"] = None if records is None else [proof.version(r) for r in reversed(records)]
        print(json.dumps(status, indent=2))
        return 0
    state = status.get("state", "idle")
    line = f"state: {state}"
    if status.get("alive"):
        line += f" (process {status['pid']})"
    if status.get("step") is not None and state not in ("activated", "kept", "refused"):
        line += f", step {status['step']}/{status.get('max_steps', '?')}"
        if status.get("loss") is not None:
            line += f", loss {status['loss']:.3f}"
        if status.get("tokens_per_s"):
            line += f", {status['tokens_per_s']:.0f} tokens/s"
    if status.get("error"):
        line += f": {status['error']}"
    if state == "interrupted":
        line += " (`hearth personalize resume` continues from the last checkpoint)"
    print(line)
    if records is None:
        print(f"versions: unavailable ({status['versions_error']})")
        return 0
    for record in reversed(records):  # newest first
        mark = "* " if record.active else "  "
        print(f"{mark}{record.id}: {proof.summary(record)}")
        if record.refused:
            print(f"    not switched to: {record.refused}")
        for warning in proof.warnings(record):
            print(f"    warning: {warning}")
    shown = next((r for r in reversed(records) if r.samples), None)  # the newest version with samples
    if shown is not None:
        print(f"\nhow {shown.id} continues passages of your unseen text (`--json` has every version's):")
        for sample in shown.samples:
            print(f"  your text:  …{_one_line(sample['prompt'])[-80:]}")
            print(f"    you wrote: {_one_line(sample['truth'])}")
            print(f"    before:    {_one_line(sample['base'])}")
            print(f"    after:     {_one_line(sample['adapter'])}")
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _eval(args: argparse.Namespace, services: Services) -> int:
    from personalize import evaluate

    result = evaluate.evaluate_files(
        services.store(), list(args.files), services.chat_model_path(), runtime=args.runtime
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"base model:  perplexity {result['base_ppl']:.2f}")
    if result["adapter"]:
        print(f"adapter {result['adapter']}: perplexity {result['adapter_ppl']:.2f}")
    else:
        print("no active adapter")
    return 0


class _ProgressBar:
    """One self-rewriting stderr line: bar, step, loss, tokens/s, ETA."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, p: Any) -> None:
        if p.state != "training":
            self._emit(f"{p.state}…")
            return
        frac = p.step / p.max_steps if p.max_steps else 0.0
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        eta = "?" if math.isnan(p.eta_s) else f"{int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}"
        self._emit(f"[{bar}] step {p.step}/{p.max_steps}  loss {p.loss:.3f}  {p.tokens_per_s:.0f} tok/s  ETA {eta}")

    def _emit(self, line: str) -> None:
        if self._tty:
            sys.stderr.write("\r" + line.ljust(len(self._last)))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._last = line

    def close(self) -> None:
        if self._tty and self._last:
            sys.stderr.write("\n")
