"""`hearth history`, `hearth export`, `hearth rekey`, `hearth passphrase`: the encrypted store from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from desktop.services import Services
from storage.errors import KnownError


def register(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser("history", help="list saved conversations, or search their messages")
    history.add_argument("--search", metavar="TEXT", help="messages containing TEXT (full-text search)")
    history.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.set_defaults(func=history_command)
    export = sub.add_parser("export", help="write one saved conversation as Markdown or JSON")
    export.add_argument("conversation", type=int, help="its id (see `hearth history`)")
    export.add_argument("--format", choices=["md", "json"], default="md")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    export.set_defaults(func=export_command)
    rekey = sub.add_parser("rekey", help="rotate the database encryption key (re-encrypts the database)")
    rekey.set_defaults(func=rekey_command)
    passphrase = sub.add_parser(
        "passphrase",
        help="change the passphrase (asked twice on a terminal, or HEARTH_NEW_PASSPHRASE for scripts)",
    )
    passphrase.set_defaults(func=passphrase_command)


def history_command(args: argparse.Namespace, services: Services) -> int:
    chats = services.store().chats
    if args.search is not None:
        hits = chats.search(args.search, limit=args.limit)
        if args.json:
            print(json.dumps(hits, ensure_ascii=False, indent=2))
        elif not hits:
            print("no messages match", file=sys.stderr)
        for hit in [] if args.json else hits:
            snippet = " ".join(hit["snippet"].split())
            print(f"{hit['conversation_id']:>5}  {_one_line(hit['title'], 40):<40}  {snippet}")
        return 0
    conversations = chats.list(limit=args.limit)
    if args.json:
        print(json.dumps(conversations, ensure_ascii=False, indent=2))
        return 0
    if not conversations:
        print("no saved conversations yet", file=sys.stderr)
        return 0
    print(f"{'id':>5}  {'updated':<20}  {'msgs':>4}  title")
    for conv in conversations:
        updated = conv["updated"][:19].replace("T", " ")
        print(f"{conv['id']:>5}  {updated:<20}  {conv['message_count']:>4}  {_one_line(conv['title'], 60)}")
    return 0


def export_command(args: argparse.Namespace, services: Services) -> int:
    from desktop.engine import export

    if args.output is not None:
        export.write(services.store(), args.conversation, args.output, args.format)
        print(f"exported conversation {args.conversation} to {args.output}", file=sys.stderr)
    else:
        print(export.render(export.load(services.store(), args.conversation), args.format))
    return 0


def rekey_command(args: argparse.Namespace, services: Services) -> int:
    store = services.store()
    removed = store.rekey()
    print(f"the database key was rotated (custody: {store.custody})")
    if removed:
        print(f"removed {len(removed)} pre-upgrade backup(s) encrypted under the old key")
    return 0


def passphrase_command(args: argparse.Namespace, services: Services) -> int:
    store = services.store()
    if store.custody != "passphrase":
        raise KnownError("this store's key is kept in the OS keychain: there is no passphrase to change")
    new = os.environ.get("HEARTH_NEW_PASSPHRASE")
    if new is None:
        if not sys.stdin.isatty():
            raise KnownError("set HEARTH_NEW_PASSPHRASE, or run from a terminal to be asked for the new passphrase")
        new = getpass.getpass("New passphrase: ")
        if new != getpass.getpass("Repeat it: "):
            raise KnownError("the passphrases did not match; nothing was changed")
    store.change_passphrase(new)
    print("passphrase changed")
    return 0


def _one_line(text: str, width: int) -> str:
    text = " ".join((text or "(untitled)").split())
    return text if len(text) <= width else text[: width - 1] + "…"
