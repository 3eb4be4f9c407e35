"""`hearth clients`: the apps allowed to use the local API, each with its own token and scopes."""

from __future__ import annotations

import argparse

from desktop.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    clients = sub.add_parser("clients", help="apps allowed to use the local API: add, list, revoke, log")
    verbs = clients.add_subparsers(dest="verb", metavar="VERB", required=True)

    add = verbs.add_parser("add", help="make a client and print its token (shown once)")
    add.add_argument("name", help="a name you will recognise in the log, e.g. 'editor' or 'claude-desktop'")
    add.add_argument(
        "--scopes",
        default="chat,embeddings",
        help="comma-separated: chat, embeddings, documents, chats (default: chat,embeddings)",
    )
    add.set_defaults(func=add_command)

    verbs.add_parser("list", help="clients, their scopes and last use").set_defaults(func=list_command)

    rotate = verbs.add_parser("rotate", help="a new token for a client; the old one stops working at once")
    rotate.add_argument("name")
    rotate.set_defaults(func=rotate_command)

    revoke = verbs.add_parser("revoke", help="remove a client; its token stops working at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=revoke_command)

    log = verbs.add_parser("log", help="what clients reached: time, endpoint or tool, passages (never content)")
    log.add_argument("--client", help="only this client")
    log.add_argument("-n", type=int, default=50, help="entries to show (default 50)")
    log.set_defaults(func=log_command)

    tokenless = verbs.add_parser(
        "ollama-tokenless",
        help="on: Ollama-only tools may chat and embed without a token (base model only, never documents)",
    )
    tokenless.add_argument("state", choices=["on", "off", "status"])
    tokenless.set_defaults(func=tokenless_command)


def add_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import Clients, parse_scopes

    print(Clients(services.store().settings).add(args.name, parse_scopes(args.scopes)))
    return 0


def rotate_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import Clients

    print(Clients(services.store().settings).rotate(args.name))
    return 0


def revoke_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import Clients

    Clients(services.store().settings).revoke(args.name)
    print(f"revoked {args.name!r}")
    return 0


def list_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import TOKENLESS_CLIENT, Clients

    store = services.store()
    registry = Clients(store.settings)
    last = store.access_log.last_use()
    listed = registry.list()
    if not listed:
        print("no API clients yet: `hearth api-token` (all scopes) or `hearth clients add NAME --scopes ...`")
    for client in listed:
        scopes = ",".join(sorted(client.scopes))
        print(f"{client.name:<20} {scopes:<32} last use {last.get(client.name, 'never')}")
    if registry.ollama_tokenless:
        used = last.get(TOKENLESS_CLIENT, "never")
        print(f"tokenless Ollama access is ON (chat and embeddings, base model only), last use {used}")
    return 0


def log_command(args: argparse.Namespace, services: Services) -> int:
    from storage.errors import KnownError

    if args.n < 1:
        raise KnownError("-n must be at least 1")
    store = services.store()
    for entry in store.access_log.recent(args.n, args.client):
        print(f"{entry.at}  {entry.client:<20} {entry.endpoint:<28} {entry.passages} passage(s)")
    return 0


def tokenless_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import Clients

    registry = Clients(services.store().settings)
    if args.state != "status":
        registry.set_ollama_tokenless(args.state == "on")
    print(f"tokenless Ollama access is {'on' if registry.ollama_tokenless else 'off'}")
    return 0
