"""`hearth ask` and `hearth chat`: the engine's stream printed as it arrives.

`--attach FILE` (repeatable) attaches a file to this conversation only: its text is context for every
answer in it and it is saved with the chat, never added to the document library (`hearth docs add` does
that). In `hearth chat`, `/attach FILE` attaches one more.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from desktop.engine import DEFAULT_MAX_TOKENS, SamplingParams
from desktop.engine.conversation import Conversation
from desktop.services import Services
from storage.errors import KnownError


def register(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser("ask", help="ask one question; the answer streams to stdout")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    ask.add_argument("--docs", action="store_true", help="answer from your documents, with sources")
    _sampling_options(ask)
    ask.set_defaults(func=ask_command)

    chat = sub.add_parser("chat", help="interactive chat (/new starts over, /quit leaves)")
    _sampling_options(chat)
    chat.add_argument("--docs", action="store_true", help="ground every answer in your documents")
    chat.set_defaults(func=chat_command)


def _sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", help="system prompt (persona) for this conversation")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument(
        "--temperature", type=float, help="0 for deterministic answers (default: the one measured for the model)"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-save", action="store_true", help="do not keep this conversation in your history")
    parser.add_argument(
        "--attach",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="attach a file to this conversation only (its text is the answers' context; repeatable)",
    )


def _params(args: argparse.Namespace) -> SamplingParams:
    return SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)


def _conversation(args: argparse.Namespace, services: Services) -> Conversation:
    store = None if args.no_save and not args.docs else services.store()
    conversation = Conversation(
        services.engine(), store=store, system_prompt=args.system, save=not args.no_save, use_docs=args.docs
    )
    if args.attach:
        from storage.parsers.worker import ParserProcess

        with ParserProcess() as parser:
            for path in args.attach:
                conversation.attach(path, parser)
    return conversation


def ask_command(args: argparse.Namespace, services: Services) -> int:
    conversation = _conversation(args, services)
    if args.json:
        reply = conversation.ask(args.question, _params(args))
        attached = [a.summary() for a in conversation.attachments]
        print(json.dumps({**reply.as_json(), "attachments": attached}, ensure_ascii=False))
        return 0 if reply.error is None else 1
    reply = conversation.ask(args.question, _params(args), on_text=_echo)
    print()
    for i, source in enumerate(reply.sources, 1):
        print(f"[{i}] {source['source']} ({source['location']})")
    return 0 if reply.error is None else 1


def chat_command(args: argparse.Namespace, services: Services) -> int:
    conversation = _conversation(args, services)
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            "Hearth chat — /new starts a new conversation, /attach FILE attaches a file to it, /quit leaves. "
            "Ctrl-C stops an answer."
        )
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        if text == "/new":
            args.attach = []  # files attached with --attach belong to the first conversation
            conversation = _conversation(args, services)
            print("(new conversation)")
            continue
        if text.startswith("/attach "):
            try:
                attached = conversation.attach(Path(text.removeprefix("/attach ").strip()).expanduser())
            except KnownError as exc:
                print(f"hearth: {exc}", file=sys.stderr)
                continue
            print(f"(attached {attached.name}: {attached.chars:,} characters)")
            continue
        try:
            reply = conversation.ask(text, _params(args), on_text=_echo)
        except KeyboardInterrupt:  # raised in _echo: `ask` closed the stream, which stopped llama.cpp
            print("\n(stopped)")
            continue
        print()
        if reply.error:
            print(f"hearth: {reply.error}", file=sys.stderr)


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
