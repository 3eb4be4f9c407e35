"""`hearth serve` (the local OpenAI-compatible API) and `hearth api-token`."""

from __future__ import annotations

import argparse
import signal
import sys

from desktop.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve the local OpenAI-compatible API on 127.0.0.1")
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
    serve.set_defaults(func=serve_command)

    token = sub.add_parser("api-token", help="print the local API's bearer token (created on first use)")
    token.add_argument("--rotate", action="store_true", help="replace the token; clients need the new one")
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
    # SIGTERM (service managers, tests) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"Hearth API listening on {server.base_url} (model {model.name}, alias 'hearth')", flush=True)
    print("Clients need the bearer token from `hearth api-token`. Ctrl-C stops.", file=sys.stderr, flush=True)
    try:
        while not server.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def token_command(args: argparse.Namespace, services: Services) -> int:
    from desktop.api.security import api_token, rotate_api_token

    store = services.store()
    print(rotate_api_token(store) if args.rotate else api_token(store))
    return 0
