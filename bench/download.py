"""Download throughput: `hearth models pull`'s downloader versus curl, fetching the same file from the same
local server (tests/fixtures/model_hub.py: the hub's URL layout on 127.0.0.1, 302 redirect to the bytes).

Hearth's time includes what curl does not do: the HEAD for the LFS sha256, hashing every byte, fsync and
the verification before the file is moved into place. Two corpora: the bundled GGUF (98 MB) and a 400 MB
file. Runs alternate between the arms; medians are reported. Goal: >= 0.9x curl's throughput.
The server sends with sendfile (zero-copy, like nginx) in its own process; its CPU is printed too.
CPU seconds per GB are printed for every arm: on a loaded machine the wall-clock ratio follows the CPU each
needs, and sha256 of every byte (which curl does not do) is most of Hearth's. The other arms say where the
limit is: Hearth without writeback while downloading (one fsync of the whole file before the rename),
curl followed by fsync (Hearth's durability), curl while a second thread hashes the same bytes
from the page cache (the least any downloader that verifies every byte needs on these cores), and the
verification done the way a careful person would: curl, then sha256sum.

    .venv/bin/python bench/download.py [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import mmap
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from desktop.engine import model_pull
from desktop.engine.model_pull import WRITEBACK, PullSpec, pull
from desktop.engine.models import bundled_model_path
from storage import cpu as machine

ROOT = Path(__file__).resolve().parents[1]
HUB_SCRIPT = ROOT / "tests" / "fixtures" / "model_hub.py"
_spec = importlib.util.spec_from_file_location("model_hub", HUB_SCRIPT)
model_hub = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["model_hub"] = model_hub
_spec.loader.exec_module(model_hub)  # type: ignore[union-attr]


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def hearth_once(url: str, sha: str, folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: the downloader's threads, nothing else runs here)."""
    cpu, start = _cpu_s(resource.RUSAGE_SELF), time.perf_counter()
    path = pull(PullSpec(url, "bench.gguf", "bench", sha, None), dest_dir=folder)
    elapsed, used = time.perf_counter() - start, _cpu_s(resource.RUSAGE_SELF) - cpu
    path.unlink()
    return elapsed, used


def hearth_one_fsync_once(url: str, sha: str, folder: Path) -> tuple[float, float]:
    """Hearth as it was: no writeback while downloading, so the fsync before the rename writes the whole file."""
    model_pull.WRITEBACK = 1 << 62
    try:
        return hearth_once(url, sha, folder)
    finally:
        model_pull.WRITEBACK = WRITEBACK


def curl_once(url: str, folder: Path, then: str = "", same_bytes: Path | None = None) -> tuple[float, float]:
    """curl alone; `then` "fsync" or "sha256sum" after it; or with `same_bytes` hashed on a second thread
    while curl runs (wall until both are done). CPU seconds of curl and of whatever ran with it."""
    out = folder / "curl.gguf"
    hasher = threading.Thread(target=_sha256_file, args=(same_bytes,)) if same_bytes else None
    cpu = _cpu_s(resource.RUSAGE_CHILDREN) + _cpu_s(resource.RUSAGE_SELF)
    start = time.perf_counter()
    curl = subprocess.Popen(["curl", "-sSfL", "-o", str(out), url])
    if hasher is not None:
        hasher.start()
        hasher.join()
    if curl.wait() != 0:
        raise SystemExit(f"curl failed on {url}")
    if then == "fsync":
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    elif then == "sha256sum":
        subprocess.run(["sha256sum", str(out)], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    used = _cpu_s(resource.RUSAGE_CHILDREN) + _cpu_s(resource.RUSAGE_SELF) - cpu
    out.unlink()
    return elapsed, used


def _sha256_file(path: Path) -> str:
    """OpenSSL's sha256 through hashlib, as Hearth hashes, over the page cache mapped (no copy to read it)."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return hashlib.sha256(mapped).hexdigest()


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["HEARTH_HOME"] = str(work / "home")
        bundled = bundled_model_path()
        big = work / "big.gguf"
        with big.open("wb") as f:
            for _ in range(4):
                f.write(bundled.read_bytes())
        # The server runs in its own process, as a real one would: in this one it would take the GIL from
        # Hearth's downloader but not from curl.
        files = {"bench/small/bench.gguf": bundled, "bench/big/bench.gguf": big}
        server = subprocess.Popen(
            [sys.executable, str(HUB_SCRIPT), *(f"{k}={v}" for k, v in files.items())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hub = model_hub.Hub(files=files, port=int(server.stdout.readline()))  # type: ignore[union-attr]
        print(
            f"CPU: {machine.describe()}; load average {os.getloadavg()[0]:.1f}; "
            f"loopback server; median of {args.runs} alternating runs; CPU-s/GB: the arm's processes, "
            "then the server's"
        )
        arms = {
            "hearth": lambda url, path: hearth_once(url, shas[path], work),
            "hearth, one fsync of the whole file at the end": lambda url, path: hearth_one_fsync_once(
                url, shas[path], work
            ),
            "curl": lambda url, path: curl_once(url, work),
            "curl, then fsync": lambda url, path: curl_once(url, work, then="fsync"),
            "curl + sha256 of the same bytes on a 2nd thread": lambda url, path: curl_once(url, work, same_bytes=path),
            "curl, then sha256sum": lambda url, path: curl_once(url, work, then="sha256sum"),
        }
        shas = {path: model_hub.sha256_of(path) for path in (bundled, big)}
        try:
            for label, key, path in (("98 MB (bundled GGUF)", "bench/small", bundled), ("400 MB", "bench/big", big)):
                url = hub.url(key, "bench.gguf")
                size = path.stat().st_size
                runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in arms}
                for _ in range(args.runs):
                    for name, arm in arms.items():
                        served = _process_cpu_s(server.pid)
                        wall, cpu = arm(url, path)
                        runs[name].append((wall, cpu, _process_cpu_s(server.pid) - served))
                walls = {name: statistics.median(r[0] for r in rs) for name, rs in runs.items()}
                print(f"{label}:")
                for name, rs in runs.items():
                    cpu, served = (statistics.median(r[i] for r in rs) / size * 1e9 for i in (1, 2))
                    print(
                        f"  {name:48} {size / walls[name] / 1e6:7.1f} MB/s  hearth vs this "
                        f"{walls[name] / walls['hearth']:.2f}x  CPU-s/GB {cpu:.2f} (server {served:.2f})"
                    )
                print(f"  ratio vs curl {walls['curl'] / walls['hearth']:.2f}x (goal >= 0.9x)")
        finally:
            server.communicate("")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
