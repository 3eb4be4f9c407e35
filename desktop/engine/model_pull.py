"""Download a chat model, only when the user asks: the one module in Hearth that opens a non-loopback socket.

`hearth models pull NAME` fetches a curated model (data/catalog.json) from the Hugging Face hub's URL layout,
`{host}/{repo}/resolve/{revision}/{file}`; `hearth models pull URL --sha256 HEX` fetches any file. What makes
it safe to trust the bytes:
- a file is verified against a sha256 before it is registered, never against nothing: the one given with
  --sha256, the catalog's pinned one, the one recorded at this file's first download, or else the hub's own
  LFS sha256 (the X-Linked-Etag header it sends with the file), which is then recorded. A mismatch deletes
  the download and registers nothing;
- it resumes: bytes go to `<file>.part` (with a sidecar naming URL, size and sha256), and a later pull asks
  for the rest with an HTTP Range request; the part already on disk is re-hashed, not trusted;
- free disk space is checked before the first byte, progress reports speed and ETA, `should_stop` cancels
  between chunks (Ctrl-C in the CLI), and a stalled server times out instead of hanging forever;
- the file is on disk (fsync) before it is moved into place. Writeback starts every WRITEBACK bytes while
  the download runs, so that fsync waits for the last window only: one fsync of the whole file at the end
  cost 0.06 s per 98 MB and 0.24 s per 400 MB here, a third of the download's time (bench/download.py).
What a pull sends is in SECURITY.md: a HEAD and a GET for that one URL (plus redirects), with a User-Agent
and a Range header, nothing else: no token, no cookie, no user data.
`HEARTH_MODEL_MIRROR` replaces the catalog's host (corporate and regional mirrors of the hub).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import http.client
import json
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from storage import paths
from storage.errors import KnownError

CATALOG_FILE = Path(__file__).with_name("data") / "catalog.json"
DEFAULT_HOST = "https://huggingface.co"
# 256 KiB per read: received, written and hashed while still in cache. 4 MiB reads went through memory
# three times and cost 2-4x the CPU per GB on a loaded 2-core machine (bench/download.py, same run).
CHUNK = 256 << 10
BUFFERS = 64  # 16 MiB in flight between the downloading and the hashing thread
WRITEBACK = 8 << 20  # start writing each 8 MiB to disk as it completes (measured 8 vs 32 MiB: on par)
TIMEOUT_S = float(os.environ.get("HEARTH_PULL_TIMEOUT", "60"))  # a server silent this long has stalled
DISK_MARGIN = 64 << 20  # left free after the download
USER_AGENT = "hearth-model-pull/0.1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# progress(done_bytes, total_bytes, bytes_per_s)
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    repo: str
    revision: str
    file: str
    size_bytes: int
    ram_gb: float
    license: str
    sha256: str | None


@dataclass(frozen=True)
class PullSpec:
    url: str
    file: str
    name: str  # the registry name it gets
    sha256: str | None  # expected, where known before asking the server
    record_key: str | None  # where the first download's sha256 is recorded (catalog entries)


@functools.cache
def catalog() -> list[CatalogEntry]:
    data = json.loads(CATALOG_FILE.read_text("utf-8"))
    return [CatalogEntry(**entry) for entry in data["models"]]


def best_fit(available_bytes: int) -> CatalogEntry | None:
    """The largest catalog model whose RAM need leaves a quarter of the memory available now to the rest."""
    fitting = [e for e in catalog() if e.ram_gb * 1e9 <= 0.75 * available_bytes]
    return max(fitting, key=lambda e: e.ram_gb, default=None)


def resolve(target: str, sha256: str | None = None) -> PullSpec:
    """A catalog name or an http(s) URL made into what to fetch and what to verify it against."""
    if sha256 is not None and not _HEX64.match(sha256.lower()):
        raise KnownError("--sha256 takes the 64 hexadecimal digits of the file's SHA-256")
    expected = sha256.lower() if sha256 else None
    if target.startswith(("http://", "https://")):
        file = Path(urlsplit(target).path).name
        if not file.endswith(".gguf"):
            raise KnownError(f"{target} does not name a .gguf file")
        if expected is None:
            raise KnownError("a model fetched by URL needs --sha256 HEX, the hash published with the file")
        return PullSpec(target, file, file.removesuffix(".gguf").lower(), expected, None)
    for entry in catalog():
        if entry.name == target:
            host = os.environ.get("HEARTH_MODEL_MIRROR", DEFAULT_HOST).rstrip("/")
            url = f"{host}/{entry.repo}/resolve/{entry.revision}/{entry.file}"
            key = f"{entry.repo}/{entry.file}"
            pinned = expected or entry.sha256 or _recorded().get(key, {}).get("sha256")
            return PullSpec(url, entry.file, entry.name, pinned, key)
    names = ", ".join(e.name for e in catalog())
    raise KnownError(f"no model named {target!r} in the catalog (known: {names}); or give a URL with --sha256")


def pull(
    spec: PullSpec,
    dest_dir: Path | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Download, verify and move into place; returns the verified file. Resumes a previous partial pull."""
    dest_dir = dest_dir or paths.models()
    final = dest_dir / spec.file
    part = dest_dir / f".{spec.file}.part"
    sidecar = dest_dir / f".{spec.file}.part.json"
    head = _request("HEAD", spec.url)
    expected = _expected_sha(spec, head)
    total = int(head.get("x-linked-size") or head.get("content-length") or 0)
    if final.exists() and final.stat().st_size == total and _sha256_of(final) == expected:
        return final  # already here and intact
    done = _resumable(part, sidecar, spec.url, expected, total)
    _check_disk(dest_dir, total - done)
    sidecar.write_text(json.dumps({"url": spec.url, "sha256": expected, "size": total}))
    digest = hashlib.sha256()
    if done:
        _hash_into(digest, part)
    if done < total or total == 0:
        digest = _fetch(spec.url, part, done, total, digest, progress, should_stop)
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise KnownError(
            f"{spec.file} failed verification (sha256 {digest.hexdigest()[:16]}…, expected {expected[:16]}…); "
            "the download was deleted and nothing was registered"
        )
    os.replace(part, final)
    sidecar.unlink(missing_ok=True)
    if spec.record_key is not None:
        _record(spec.record_key, expected, head.get("x-repo-commit"))
    return final


def _expected_sha(spec: PullSpec, head: dict[str, str]) -> str:
    linked = head.get("x-linked-etag", "").removeprefix("W/").strip('"').lower()
    server_sha = linked if _HEX64.match(linked) else None
    if spec.sha256 is not None:
        if server_sha is not None and server_sha != spec.sha256:
            raise KnownError(
                f"the server reports sha256 {server_sha[:16]}… for {spec.file}, not the expected "
                f"{spec.sha256[:16]}…; refusing to download"
            )
        return spec.sha256
    if server_sha is None:
        raise KnownError(f"the server sent no sha256 for {spec.file}; pass --sha256 HEX to verify it against")
    return server_sha


def _resumable(part: Path, sidecar: Path, url: str, expected: str, total: int) -> int:
    """Bytes of a previous partial download of this same file, or 0 after discarding a stale one."""
    try:
        meta = json.loads(sidecar.read_text())
        size = part.stat().st_size
    except (OSError, ValueError):
        part.unlink(missing_ok=True)
        return 0
    if meta != {"url": url, "sha256": expected, "size": total} or size > total:
        part.unlink(missing_ok=True)
        return 0
    return size


def _check_disk(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed + DISK_MARGIN > free:
        raise KnownError(f"the download needs about {_gb(needed)} of disk, {_gb(free)} free in {folder}")


def _fetch(
    url: str,
    part: Path,
    done: int,
    total: int,
    digest: Any,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> Any:
    """Fetch bytes [done, total) into part, hashing them into digest; returns the digest of the whole file."""
    headers = {"Range": f"bytes={done}-"} if done else {}
    conn, response = _open("GET", url, headers)
    try:
        if done and response.status == 200:  # the server ignored the Range: start over
            done, digest = 0, hashlib.sha256()
        elif response.status not in (200, 206):
            raise KnownError(f"download failed: HTTP {response.status} {response.reason} for {url}")
        started, last_report, start_done = time.monotonic(), 0.0, done
        with part.open("r+b" if done else "wb") as out, _Hasher(digest) as hasher:
            out.seek(done)
            out.truncate()
            written_back = done
            while True:
                if should_stop is not None and should_stop():
                    raise KnownError("download cancelled; run the same command again to resume")
                buffer = hasher.free_buffer()
                n = response.readinto(buffer)
                if not n:
                    break
                chunk = buffer[:n]
                try:
                    out.write(chunk)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        raise KnownError(f"the disk filled up while downloading to {part.parent}") from exc
                    raise
                hasher.add(chunk, buffer)
                done += n
                if done - written_back >= WRITEBACK:
                    _start_writeback(out.fileno(), written_back, done - written_back)
                    written_back = done
                now = time.monotonic()
                if progress is not None and (now - last_report >= 0.25 or done == total):
                    progress(done, total, (done - start_done) / max(now - started, 1e-6))
                    last_report = now
            out.flush()
            os.fsync(out.fileno())
    except TimeoutError as exc:
        raise KnownError(f"the server stopped sending for {TIMEOUT_S:.0f} s; run again to resume") from exc
    except (http.client.HTTPException, ConnectionError) as exc:
        raise KnownError(f"the connection broke during the download ({exc}); run again to resume") from exc
    finally:
        conn.close()
    if total and done != total:
        raise KnownError(f"the server sent {done:,} of {total:,} bytes; run again to resume")
    return digest


def _start_writeback(fd: int, offset: int, length: int) -> int:
    """Queue a written range for disk and return at once: Linux's sync_file_range(SYNC_FILE_RANGE_WRITE),
    which the os module does not wrap. Its errors, if any, come back from the fsync that follows; elsewhere
    (returns 0) nothing starts early and that fsync writes it all."""
    call = _sync_file_range()
    return 0 if call is None else int(call(fd, offset, length, 2))  # 2: SYNC_FILE_RANGE_WRITE


@functools.cache
def _sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    call = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
    if call is not None:
        call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return call


class _Hasher:
    """sha256 on a second thread (hashlib releases the GIL), fed from a small pool of reused buffers: hashing
    inline cost a third of the throughput (sha256 runs ~260 MB/s on a busy core, loopback ~180 MB/s)."""

    def __init__(self, digest: Any, buffers: int = BUFFERS) -> None:
        self.digest = digest
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(buffers):
            self._free.put(memoryview(bytearray(CHUNK)))
        self._todo: queue.Queue[tuple[memoryview, memoryview] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hearth-pull-sha256", daemon=True)

    def __enter__(self) -> _Hasher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._todo.put(None)
        self._thread.join()

    def free_buffer(self) -> memoryview:
        return self._free.get()

    def add(self, chunk: memoryview, buffer: memoryview) -> None:
        self._todo.put((chunk, buffer))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            chunk, buffer = item
            self.digest.update(chunk)
            self._free.put(buffer)


def _request(method: str, url: str) -> dict[str, str]:
    """HEAD without following redirects: the hub's LFS headers are on the redirect itself."""
    conn, response = _open(method, url, {}, follow=False)
    conn.close()
    if response.status == 404:
        raise KnownError(f"not found on the server (HTTP 404): {url}")
    if response.status >= 400:
        raise KnownError(f"the server refused the download: HTTP {response.status} {response.reason} for {url}")
    headers = {k.lower(): v for k, v in response.getheaders()}
    if 300 <= response.status < 400 and "x-linked-size" not in headers:
        _, redirected = _open(method, url, {}, follow=True)
        headers = {k.lower(): v for k, v in redirected.getheaders()} | headers
    return headers


def _open(
    method: str, url: str, headers: dict[str, str], follow: bool = True, hops: int = 5
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    for _ in range(hops):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise KnownError(f"cannot download from {url}: only http and https URLs")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=TIMEOUT_S)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, headers={"User-Agent": USER_AGENT, **headers})
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise KnownError(f"cannot reach {parts.hostname}: {exc.strerror or exc}") from exc
        if follow and response.status in (301, 302, 303, 307, 308) and response.getheader("location"):
            url = urljoin(url, response.getheader("location", ""))
            conn.close()
            continue
        return conn, response
    raise KnownError(f"too many redirects for {url}")


def _hash_into(digest: Any, path: Path) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_into(digest, path)
    return digest.hexdigest()


def _recorded() -> dict[str, dict[str, str]]:
    file = paths.settings()
    try:
        return dict(json.loads(file.read_text("utf-8")).get("pulled", {}))
    except (OSError, ValueError):
        return {}


def _record(key: str, sha256: str, commit: str | None) -> None:
    """Pin what the first download verified: later pulls of this catalog entry must match it."""
    from desktop.engine.models import update_settings

    def change(data: dict[str, Any]) -> None:
        data.setdefault("pulled", {})[key] = {"sha256": sha256, **({"revision": commit} if commit else {})}

    update_settings(change)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"
