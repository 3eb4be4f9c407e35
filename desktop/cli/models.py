"""`hearth models`: list, find, register, download and choose chat models (GGUF files)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from desktop.engine import models
from desktop.engine.gguf_file import inspect
from desktop.engine.model_fit import gb
from desktop.services import Services
from storage.errors import KnownError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, find, add, download or choose chat models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="registered models (default)")
    scan = actions.add_parser("scan", help="find models other apps downloaded (Ollama, LM Studio, GPT4All, ...)")
    scan.add_argument("--json", action="store_true", help="print one JSON list")
    add = actions.add_parser("add", help="register a GGUF file, or a model `models scan` found, in place")
    add.add_argument(
        "target", metavar="MODEL", help="a .gguf path, or a name from `hearth models scan` (e.g. llama3.2:1b)"
    )
    add.add_argument("--name", help="name to register it under (default: the file or scan name)")
    pull = actions.add_parser("pull", help="download a catalog model, or a GGUF URL, verify it and register it")
    pull.add_argument("target", metavar="NAME|URL", nargs="?", help="a catalog name (omit to list them) or a URL")
    pull.add_argument("--sha256", help="the file's SHA-256 (required for a URL)")
    pull.add_argument("--name", help="name to register it under (default: the catalog or file name)")
    use = actions.add_parser("use", help="make a registered model the default")
    use.add_argument("name")
    parser.set_defaults(func=models_command)


def models_command(args: argparse.Namespace, services: Services) -> int:
    if args.action == "scan":
        return scan_command(args)
    if args.action == "add":
        return add_command(args)
    if args.action == "pull":
        return pull_command(args) if args.target else catalog_command()
    if args.action == "use":
        model = models.use(args.name)
        print(f"now using {model.name}")
        if not inspect(models.require(model)).chat_template:
            print("it is a base model without a chat template: `hearth personalize` and `eval` work, chat does not")
        return 0
    return list_command()


def scan_command(args: argparse.Namespace) -> int:
    from desktop.engine.model_scan import scan

    found = scan()
    if args.json:
        print(json.dumps([m.as_json() for m in found], indent=2))
        return 0
    if not found:
        print("no GGUF models found in the Ollama, LM Studio, GPT4All, Jan, Hugging Face or llama.cpp folders")
        return 0
    print(f"{'NAME':40} {'SOURCE':11} {'ARCH':9} {'QUANT':8} {'SIZE':>8} {'RAM':>8}  CHAT PERSONALIZE")
    for m in found:
        print(
            f"{m.name[:40]:40} {m.source:11} {m.architecture[:9]:9} {m.quantization[:8]:8} {gb(m.size_bytes):>8} "
            f"{gb(m.ram_bytes):>8}  {'yes' if m.chat else 'no':4} {'yes' if m.personalization else 'no'}"
        )
    print("register one in place (nothing is copied) with: hearth models add NAME")
    return 0


def add_command(args: argparse.Namespace) -> int:
    path, source, default_name = Path(args.target).expanduser(), None, None
    if not path.exists():
        from desktop.engine.model_scan import registry_name, scan

        matches = [m for m in scan() if m.name == args.target]
        if not matches:
            raise KnownError(f"{args.target} is neither a file nor a model `hearth models scan` finds")
        path, source = Path(matches[0].path), matches[0].source
        default_name = registry_name(matches[0].name)
    model, info = models.add(path, args.name or default_name, source=source)
    print(f"added {model.name}: {info.architecture} {info.file_type}, {info.size_bytes / 2**20:.0f} MiB, in place")
    print(f"use it with: hearth models use {model.name}")
    return 0


def catalog_command() -> int:
    from desktop.engine.model_fit import available_memory
    from desktop.engine.model_pull import best_fit, catalog

    free = available_memory()
    best = best_fit(free)
    print(f"{'NAME':14} {'SIZE':>8} {'RAM':>7}  {'LICENSE':14} REPOSITORY")
    for e in catalog():
        mark = "  <- fits this machine best" if best is not None and e.name == best.name else ""
        print(f"{e.name:14} {gb(e.size_bytes):>8} {e.ram_gb:5.1f} GB  {e.license:14} {e.repo}{mark}")
    print(f"{gb(free)} of memory available now; download one with: hearth models pull NAME")
    return 0


def pull_command(args: argparse.Namespace) -> int:
    import sys
    from urllib.parse import urlsplit

    from desktop.engine.model_pull import pull, resolve

    spec = resolve(args.target, args.sha256)
    print(f"downloading {spec.file} from {urlsplit(spec.url).hostname}", file=sys.stderr)
    try:
        path = pull(spec, progress=_progress_line)
    except KeyboardInterrupt:
        print("\ndownload paused; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        print(file=sys.stderr)
    model, info = models.add(path, args.name or spec.name, source="pull")
    print(f"verified and added {model.name}: {info.architecture} {info.file_type}, {gb(info.size_bytes)}")
    print(f"use it with: hearth models use {model.name}")
    return 0


def _progress_line(done: int, total: int, speed: float) -> None:
    """One line on stderr, rewritten in place: Hearth's own progress, no third-party bar."""
    import sys

    eta = f"ETA {(total - done) / speed:4.0f} s" if speed > 0 and total else ""
    size = f"{done / 1e6:8.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:8.1f} MB"
    sys.stderr.write(f"\r  {size}  {speed / 1e6:6.1f} MB/s  {eta}   ")
    sys.stderr.flush()


def list_command() -> int:
    from personalize import estimate, job

    active = models.active_model().name
    data_tokens = job.read_status().get("train_tokens")  # from the last personalization run, if any
    for model in models.list_models():
        mark = "*" if model.name == active else " "
        try:
            path = models.require(model)
            info = inspect(path)
            detail = f"{info.architecture} {info.file_type} {info.size_bytes / 2**20:.0f} MiB"
            personalize = estimate.describe(path, data_tokens)
        except KnownError as exc:  # a registered file may have been moved, replaced or damaged since
            detail, personalize = f"unavailable: {exc}", "no: the file is unavailable"
        speed = models.measured_speed(model)
        rate = f"{speed:.1f} tok/s" if speed else "not run yet"
        origin = "bundled" if model.bundled else str(model.path)
        print(f"{mark} {model.name:24} {detail:28} {rate:12} {origin}")
        print(f"  {'':24} personalize: {personalize}")
    return 0
