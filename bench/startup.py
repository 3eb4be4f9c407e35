"""Time from process start to the window's first paint, and to a streamed answer, via `hearth --self-test`.

Prints the numbers the self-test reports (first paint measured from the process's own start time, so it
includes interpreter start-up and imports) for a few runs, and the median. Also prints how long a bare
`python -c pass` takes in the same loop, as the baseline the first-paint time is measured against.
Run: `.venv/bin/python bench/startup.py [runs]`.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    paints, answers, bare = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "HEARTH_HOME": home,
                "HEARTH_KEYRING": "0",
                "HEARTH_PASSPHRASE": "bench passphrase",
            }
            done = subprocess.run(
                [sys.executable, "-m", "desktop.cli", "--self-test"], env=env, capture_output=True, text=True
            )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        match = re.search(r"first paint ([\d.]+) s .* in ([\d.]+) s", done.stdout)
        assert match, done.stdout
        paints.append(float(match.group(1)))
        answers.append(float(match.group(2)))
        print(done.stdout.strip())
    paint = statistics.median(paints)
    print(f"\nfirst paint: median {paint:.2f} s over {runs} runs (budget 1.5 s)")
    base = statistics.median(bare)
    print(f"bare interpreter start: median {base:.2f} s; first paint is {paint / base:.1f}x that")
    print(f"48-token answer through the GUI: median {statistics.median(answers):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
