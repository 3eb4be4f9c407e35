"""Download throughput: `hearth models pull`'s downloader versus curl, fetching the same file from the same
local server (tests/fixtures/model_hub.py: the hub's URL layout on 127.0.0.1, 302 redirect to the bytes).

Hearth's time includes what curl does not do: the HEAD for the LFS sha256, hashing every byte, fsync and
the verification before the file is moved into place. Two corpora: the bundled GGUF (98 MB) and a 400 MB
file. Runs alternate between the two clients; medians are reported. Goal: >= 0.9x curl's throughput.
The server sends with sendfile (zero-copy, like nginx), so it takes little of the CPU the two clients share.
CPU seconds per GB are printed too: on a loaded machine the wall-clock ratio follows the CPU each needs,
and sha256 of every byte (which curl does not do) is most of Hearth's. A second baseline does the same
verification as Hearth the way a careful person would: curl, then sha256sum.

    .venv/bin/python bench/download.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from desktop.engine.model_pull import PullSpec, pull
from desktop.engine.models import bundled_model_path

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


def curl_once(url: str, folder: Path, verify: str | None = None) -> tuple[float, float]:
    """curl alone, or with `verify` (the sha256) what a careful person runs: curl, then sha256sum."""
    out = folder / "curl.gguf"
    cpu, start = _cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(["curl", "-sSfL", "-o", str(out), url], check=True)
    if verify is not None:
        printed = subprocess.run(["sha256sum", str(out)], check=True, capture_output=True, text=True).stdout
        assert printed.split()[0] == verify
    elapsed, used = time.perf_counter() - start, _cpu_s(resource.RUSAGE_CHILDREN) - cpu
    out.unlink()
    return elapsed, used


def cpu_features() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("sse4_2", "avx2", "avx512f", "sha_ni", "amx_tile") if f in flags.split())


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
            f"CPU: {os.cpu_count()} logical cores ({cpu_features()}); load average {os.getloadavg()[0]:.1f}; "
            f"loopback server; median of {args.runs} alternating runs"
        )
        try:
            for label, key, path in (("98 MB (bundled GGUF)", "bench/small", bundled), ("400 MB", "bench/big", big)):
                url = hub.url(key, "bench.gguf")
                sha = model_hub.sha256_of(path)
                size = path.stat().st_size
                ours, theirs, verified = [], [], []
                for _ in range(args.runs):
                    ours.append(hearth_once(url, sha, work))
                    theirs.append(curl_once(url, work))
                    verified.append(curl_once(url, work, verify=sha))
                h, c, v = (statistics.median(t for t, _ in runs) for runs in (ours, theirs, verified))
                hc, cc = (statistics.median(u for _, u in runs) for runs in (ours, theirs))
                print(
                    f"{label:22} hearth {size / h / 1e6:7.1f} MB/s  curl {size / c / 1e6:7.1f} MB/s  "
                    f"ratio {c / h:.2f}x (goal >= 0.9x)  CPU s/GB hearth {hc / size * 1e9:.2f} "
                    f"curl {cc / size * 1e9:.2f}  |  curl + sha256sum {size / v / 1e6:7.1f} MB/s, "
                    f"ratio {v / h:.2f}x"
                )
        finally:
            server.communicate("")


if __name__ == "__main__":
    main()
