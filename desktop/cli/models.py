"""`hearth models`: list, register and choose chat models (GGUF files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop.engine import models
from desktop.engine.gguf_file import inspect
from desktop.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, add or choose chat models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="registered models (default)")
    add = actions.add_parser("add", help="register a GGUF model file")
    add.add_argument("path", type=Path)
    add.add_argument("--name", help="name to register it under (default: the file name)")
    use = actions.add_parser("use", help="make a registered model the default")
    use.add_argument("name")
    parser.set_defaults(func=models_command)


def models_command(args: argparse.Namespace, services: Services) -> int:
    if args.action == "add":
        model, info = models.add(args.path, args.name)
        print(f"added {model.name}: {info.architecture} {info.file_type}, {info.size_bytes / 2**20:.0f} MiB")
        print(f"use it with: hearth models use {model.name}")
        return 0
    if args.action == "use":
        model = models.use(args.name)
        print(f"now using {model.name}")
        return 0
    from personalize import estimate, job

    active = models.active_model().name
    data_tokens = job.read_status().get("train_tokens")  # from the last personalization run, if any
    for model in models.list_models():
        mark = "*" if model.name == active else " "
        try:
            info = inspect(model.path)
            detail = f"{info.architecture} {info.file_type} {info.size_bytes / 2**20:.0f} MiB"
        except Exception as exc:  # a registered file may have been moved or damaged since
            detail = f"unavailable: {exc}"
        origin = "bundled" if model.bundled else str(model.path)
        print(f"{mark} {model.name:24} {detail:28} {origin}")
        print(f"  {'':24} personalize: {estimate.describe(model.path, data_tokens)}")
    return 0
