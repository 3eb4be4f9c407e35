"""`hearth models scan` over a large tree: Hearth's scan versus a bare directory walk of the same tree.

Builds, under a temporary HOME, an LM Studio folder and a Hugging Face hub cache holding --files files in
nested folders (READMEs, JSON, tokenizer files, partial downloads, and model files: the bundled GGUF's real
header in sparse files of its full size) plus an Ollama store of manifests and a blob. Times the full scan
(walk + GGUF header parse of every .gguf) against `os.walk` listing the same tree (the floor any scan
pays), in two corpora: few models among many files, and many models. Medians of --runs; the difference
per model is what reading one header costs.

    .venv/bin/python bench/scan.py [--files 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from desktop.engine.model_scan import places, scan
from desktop.engine.models import bundled_model_path
from storage.offline import ensure_offline


def build(home: Path, files: int, models: int, gguf: Path) -> None:
    roots = [home / ".lmstudio" / "models", home / ".cache" / "huggingface" / "hub"]
    for i in range(files):
        folder = roots[i % 2] / f"publisher{i % 50}" / f"repo{i % 400}"
        folder.mkdir(parents=True, exist_ok=True)
        name = ("README.md", "config.json", "tokenizer.json", "notes.txt", "model.gguf.part")[i % 5]
        (folder / f"{i}-{name}").write_text("x" * (i % 200))
    header = gguf.read_bytes()[: 8 << 20]  # metadata and tensor table; the rest is tensor data
    for i in range(models):
        target = roots[i % 2] / f"publisher{i % 50}" / f"repo{i}" / f"model-{i}.Q4_1.gguf"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:  # a distinct file (scan counts each inode once), sparse past the header
            f.write(header)
            f.truncate(gguf.stat().st_size)
    ollama = home / ".ollama" / "models"
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    _link(gguf, ollama / "blobs" / f"sha256-{sha}")
    for i in range(20):
        manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / f"model{i}" / "latest"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        layer = {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{sha}", "size": 1}
        manifest.write_text(json.dumps({"layers": [layer]}))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def walk_only(home: Path) -> int:
    n = 0
    for place in places(home, env={}):
        for _, _, names in os.walk(place.root):
            n += len(names)
    return n


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ensure_offline()
    gguf = bundled_model_path()
    print(f"CPU: {os.cpu_count()} logical cores; tree of {args.files} files per corpus; median of {args.runs}")
    for label, models in (("few models (5) among many files", 5), ("many models (50)", 50)):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            build(home, args.files, models, gguf)
            listed = walk_only(home)
            found = len(scan(home, env={}))
            t_scan = timed(lambda home=home: scan(home, env={}), args.runs)
            t_walk = timed(lambda home=home: walk_only(home), args.runs)
            print(
                f"{label:34} files {listed:6}  found {found:4}  scan {t_scan * 1000:7.1f} ms  "
                f"os.walk {t_walk * 1000:6.1f} ms  ratio {t_scan / t_walk:5.2f}x  per model "
                f"{(t_scan - t_walk) / max(found, 1) * 1000:.2f} ms"
            )


if __name__ == "__main__":
    main()
