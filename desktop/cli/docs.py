"""`hearth add`, `hearth docs`, `hearth forget`, `hearth search`: the user's documents from the command line.

`add` indexes files (keyword-searchable as each commits), then embeds them; a progress bar goes to stderr,
a summary with a reason for every failed file to stdout. Ctrl-C stops cleanly within a second (mid-file too):
what was committed stays, and running `add` again resumes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from desktop.services import Services
from storage.errors import KnownError


def register(sub: argparse._SubParsersAction) -> None:
    add = sub.add_parser("add", help="index files or folders (recursively) for `search` and `ask --docs`")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    add.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    add.add_argument("--max-size", type=float, default=50.0, metavar="MB", help="skip files larger than this (50)")
    add.add_argument("--no-embed", action="store_true", help="index for keyword search now; embed later")
    add.add_argument("--no-watch", action="store_true", help="index the folders once; do not keep them up to date")
    add.add_argument("--json", action="store_true", help="print the summary as JSON")
    add.set_defaults(func=add_command)
    docs = sub.add_parser("docs", help="list documents with their status (indexed, waiting, failed: reason)")
    docs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    docs.add_argument("--prune", action="store_true", help="forget documents whose files no longer exist")
    docs.add_argument("--failed", action="store_true", help="list only the files whose last ingest failed, and why")
    docs.set_defaults(func=docs_command)
    actions = docs.add_subparsers(dest="action", metavar="{watch,unwatch}")
    watch = actions.add_parser("watch", help="keep the added folders indexed as files change, until Ctrl-C")
    watch.add_argument("folders", nargs="*", metavar="FOLDER", help="folders to start watching as well")
    watch.add_argument("--json", action="store_true", help="print each batch as a JSON line")
    watch.set_defaults(func=watch_command)
    unwatch = actions.add_parser("unwatch", help="stop watching a folder (its documents stay; `forget` removes them)")
    unwatch.add_argument("folder", metavar="FOLDER")
    unwatch.set_defaults(func=unwatch_command)
    forget = sub.add_parser("forget", help="remove a document from the index (path, file name or id)")
    forget.add_argument("doc", metavar="DOC")
    forget.set_defaults(func=forget_command)
    search = sub.add_parser("search", help="search your documents (keywords and meaning)")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("-k", type=int, default=5, help="how many results (default 5)")
    search.add_argument("--json", action="store_true", help="print JSON: a list of results")
    search.set_defaults(func=search_command)


class _Bar:
    """One redrawn line on stderr when it is a terminal; a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        final = p.done >= p.total
        if not final and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        width = 24
        filled = int(width * p.done / max(p.total, 1))
        unit = "files" if p.phase == "index" else "chunks"
        eta = f" ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}" if p.eta_s is not None and not final else ""
        line = (
            f"{'indexing' if p.phase == 'index' else 'embedding'} [{'#' * filled}{'.' * (width - filled)}] "
            f"{p.done}/{p.total} {unit} {p.rate:.1f}/s{eta}"
        )
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def add_command(args: argparse.Namespace, services: Services) -> int:

    if args.max_size <= 0:
        raise KnownError("--max-size must be a positive number of megabytes")
    stop = {"asked": False}

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        max_bytes = int(args.max_size * 2**20)
        if not args.no_watch:
            from storage.watch import remember_folders

            remember_folders(lambda: services.store().db, args.paths, args.include, args.exclude, max_bytes)
        summary = services.store().ingest(
            args.paths,
            include=args.include,
            exclude=args.exclude,
            max_bytes=max_bytes,
            progress=_Bar(),
            should_stop=lambda: stop["asked"],
            embed=not args.no_embed,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    counts = summary.counts()
    if args.json:
        out = {
            **counts,
            "chunks": summary.chunks,
            "embedded": summary.embedded,
            "pending_vectors": summary.pending_vectors,
            "cancelled": summary.cancelled,
            "seconds": round(summary.seconds, 2),
            "failures": [{"path": o.path, "reason": o.reason} for o in summary.by_status("failed")],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(
            f"added {counts['added']}, updated {counts['updated']}, skipped {counts['skipped']} unchanged, "
            f"failed {counts['failed']}; {summary.chunks} chunks, {summary.embedded} embedded "
            f"in {summary.seconds:.1f}s"
        )
        for o in summary.by_status("failed"):
            print(f"  failed: {o.path}: {o.reason}")
        if summary.pending_vectors:
            print(
                f"{summary.pending_vectors} chunks await embedding (keyword search works now); run `hearth add` again"
            )
    if summary.cancelled:
        return 130
    return 0


def docs_command(args: argparse.Namespace, services: Services) -> int:
    store = services.store()
    docs = store.documents
    if args.prune:
        for path in docs.forget_missing():
            print(f"forgot {path} (file no longer exists)", file=sys.stderr)
    listing = docs.listing()
    if args.failed:
        failed = [r for r in listing if r.state == "failed"]
        if args.json:
            print(json.dumps([{"path": r.path, "status": r.status} for r in failed], ensure_ascii=False))
        else:
            for r in failed:
                print(f"{r.path}: {r.status}")
        return 0
    if args.json:
        print(json.dumps([r.__dict__ for r in listing], ensure_ascii=False, indent=2))
        return 0
    from storage.watch import WatchedFolders

    for folder in WatchedFolders(lambda: store.db).list():
        print(f"watching {folder.path}" + ("" if Path(folder.path).is_dir() else " (missing)"), file=sys.stderr)
    if not listing:
        print("no documents yet: add some with `hearth add PATH`", file=sys.stderr)
        return 0
    print(f"{'id':>5}  {'kind':<8}  {'chunks':>6}  {'vectors':>7}  {'status':<9}  path")
    for r in listing:
        ident = "" if r.id is None else str(r.id)
        reason = f": {r.status.split(': ', 1)[1]}" if r.state == "failed" else ""
        print(f"{ident:>5}  {r.kind:<8}  {r.chunks:>6}  {r.embedded:>7}  {r.state:<9}  {r.path}{reason}")
    counts = {s: sum(r.state == s for r in listing) for s in ("indexed", "waiting", "failed")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return 0


def watch_command(args: argparse.Namespace, services: Services) -> int:
    """Scan the watched folders, then follow their changes, printing what each batch did."""
    from storage.watch import BatchResult, FolderWatcher, remember_folders

    db = lambda: services.store().db  # noqa: E731 (the store opens on first use)
    for folder in args.folders:
        if not Path(folder).expanduser().is_dir():
            raise KnownError(f"not a folder: {folder}")
    remember_folders(db, args.folders)
    watcher = FolderWatcher(db)
    if not watcher.folders.list():
        raise KnownError("no folders to watch: add one with `hearth add FOLDER` or `hearth docs watch FOLDER`")
    stop = {"asked": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["asked"] = True

    def report(batch: BatchResult) -> None:
        if args.json:
            print(json.dumps({**batch.summary.counts(), "forgotten": batch.forgotten,
                              "failures": [{"path": o.path, "reason": o.reason}
                                           for o in batch.summary.by_status("failed")]}), flush=True)  # fmt: skip
            return
        for o in batch.summary.outcomes:
            if o.status != "skipped":
                print(f"{o.status}: {o.path}" + (f": {o.reason}" if o.reason else ""), flush=True)
        for path in batch.forgotten:
            print(f"forgot: {path}", flush=True)

    previous = signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal)
    print("watching " + ", ".join(f.path for f in watcher.folders.list()) + " (Ctrl-C stops)", file=sys.stderr)
    try:
        watcher.run(lambda: stop["asked"], report)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    return 0


def unwatch_command(args: argparse.Namespace, services: Services) -> int:
    from storage.watch import WatchedFolders

    if not WatchedFolders(lambda: services.store().db).remove(args.folder):
        raise KnownError(f"'{args.folder}' is not a watched folder (see `hearth docs`)")
    print(f"stopped watching {args.folder}")
    return 0


def forget_command(args: argparse.Namespace, services: Services) -> int:
    for path in services.store().documents.forget(args.doc):
        print(f"forgot {path}")
    return 0


def search_command(args: argparse.Namespace, services: Services) -> int:
    if args.k < 1:
        raise KnownError("-k must be at least 1")
    hits = services.store().search(args.query, k=args.k)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("nothing found", file=sys.stderr)
    for n, h in enumerate(hits, start=1):
        sim = f" sim {h.similarity:.2f}" if h.similarity is not None else ""
        print(f"[{n}] {Path(h.source).name} ({h.location}){sim}  {h.source}")
        print("    " + " ".join(h.text.split())[:300])
    return 0
