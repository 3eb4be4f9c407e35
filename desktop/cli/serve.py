"""`hearth serve` (the local OpenAI- and Ollama-compatible API and MCP) and `hearth api-token`."""

from __future__ import annotations

import argparse
import signal
import sys

from desktop.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve the local OpenAI- and Ollama-compatible API and MCP on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (e.g. http://localhost:3000) call the API; repeatable",
    )
    serve.add_argument("--queue", type=int, default=4, help="requests that may wait for the model (more get 429)")
    serve.add_argument("--max-tokens-cap", type=int, default=1024, help="upper bound for a request's max_tokens")
    serve.add_argument("--no-watch", action="store_true", help="do not keep the added folders indexed meanwhile")
    serve.set_defaults(func=serve_command)

    token = sub.add_parser("api-token", help="make the default API client's token and print it (shown once)")
    token.add_argument(
        "--rotate", action="store_true", help="replace the default client's token; the old one stops working at once"
    )
    token.set_defaults(func=token_command)


def serve_command(args: argparse.Namespace, services: Services) -> int:
    from desktop.api.app import ApiConfig
    from desktop.api.server import ApiServer
    from desktop.engine import models
    from storage.errors import KnownError

    if not 0 <= args.port <= 65535:
        raise KnownError(f"--port must be between 0 and 65535, not {args.port}")
    if args.queue < 0 or args.max_tokens_cap < 1:
        raise KnownError("--queue must be >= 0 and --max-tokens-cap >= 1")
    model = models.find(args.model) if args.model else models.active_model()
    config = ApiConfig(
        model_name=model.name,
        allowed_origins=tuple(args.allow_origin),
        queue_capacity=args.queue,
        max_tokens_cap=args.max_tokens_cap,
    )
    services.engine()  # load the model now: a broken model fails here, not on the first request
    server = ApiServer.from_services(services, config, port=args.port)
    server.start()
    watcher = None if args.no_watch else _watch_folders(services)
    # SIGTERM (service managers, tests) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"Hearth API listening on {server.base_url} (model {model.name}, alias 'hearth')", flush=True)
    print(
        f"Ollama API at {server.root_url}, MCP at {server.root_url}/mcp. Clients need a token from "
        "`hearth api-token` or `hearth clients add`. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not server.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if watcher is not None:
            watcher.stop()
        server.stop()
    return 0


def _watch_folders(services: Services):  # type: ignore[no-untyped-def]
    """The added folders stay indexed while the API serves (its own thread and connection)."""
    from storage.watch import WatcherThread

    def report(batch) -> None:  # type: ignore[no-untyped-def]
        for o in batch.summary.by_status("failed"):
            print(f"hearth: could not index {o.path}: {o.reason}", file=sys.stderr, flush=True)

    def fail(message: str) -> None:
        print(f"hearth: watching folders stopped: {message}", file=sys.stderr, flush=True)

    return WatcherThread(services.store().connect_again, on_batch=report, on_error=fail).start()


def token_command(args: argparse.Namespace, services: Services) -> int:
    from storage.clients import DEFAULT_CLIENT, Clients
    from storage.errors import KnownError

    token = Clients(services.store().settings).default_token(rotate=args.rotate)
    if token is None:
        raise KnownError(
            f"the {DEFAULT_CLIENT!r} client's token was shown when it was made and is kept only as a hash; "
            "`hearth api-token --rotate` makes a new one"
        )
    print(token)
    return 0
