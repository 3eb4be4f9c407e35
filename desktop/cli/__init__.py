"""`hearth` command line: argument parsing first, every heavy import inside the command that needs it.

Each command group is a module exposing `register(subparsers)`; handlers are `handler(args, services) -> int`.
A `KnownError` becomes one line on stderr and exit status 1; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import sys
import warnings

from storage.errors import KnownError, disk_full
from storage.hardening import disable_core_dumps
from storage.offline import ensure_offline

GROUPS = ["chat", "models", "doctor", "store", "docs", "personalize", "serve", "clients", "mcp"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Hearth: a private, personal AI that runs and learns on this computer.",
    )
    parser.add_argument("--model", help="name of a registered model to use for this command (see `hearth models`)")
    parser.add_argument("--threads", type=int, help="CPU threads for the model (default: physical cores)")
    parser.add_argument("--self-test", action="store_true", help="start the app offscreen, ask one question, exit")
    parser.add_argument("--screenshot", help="with --self-test: save a screenshot of the window to this PNG")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        importlib.import_module(f"desktop.cli.{group}").register(sub)
    return parser


def passphrase_from_env_or_tty() -> str | object | None:
    """HEARTH_PASSPHRASE for scripts; an interactive prompt on a terminal; otherwise None (store explains)."""
    from storage.keys import env_passphrase

    env = env_passphrase()
    if env is not None:
        return env
    if sys.stdin.isatty():
        return _prompt_passphrase
    return None


def _prompt_passphrase(first_run: bool) -> str:
    if not first_run:
        return getpass.getpass("Hearth passphrase: ")
    print("No OS keychain is available, so Hearth protects your data with a passphrase.", file=sys.stderr)
    while True:
        first = getpass.getpass("Choose a passphrase: ")
        if first and first == getpass.getpass("Repeat it: "):
            return first
        print("The passphrases did not match (or were empty); try again.", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    disable_core_dumps()  # before the key or any user text is in memory
    ensure_offline()
    # Libraries' deprecation notices (transformers about peft's calls, say) are for developers, not users:
    # the terminal shows Hearth's own output. Tests and benches still see them.
    warnings.simplefilter("ignore", FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    from desktop.engine import models
    from desktop.services import Services

    services = None
    try:
        model_path = models.require(models.find(args.model)) if args.model else None
        services = Services(passphrase_from_env_or_tty(), model_path=model_path, threads=args.threads)  # type: ignore[arg-type]
        if args.command is None:
            from desktop.ui.app import run_app

            return run_app(services, self_test=args.self_test, screenshot=args.screenshot)
        return int(args.func(args, services) or 0)
    except KnownError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        full = disk_full(exc)  # a write path that did not say so itself (a cache, a log, opening the store)
        if full is None:
            raise
        print(f"hearth: {full}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed it: nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141
    finally:
        if services is not None:
            services.close()
