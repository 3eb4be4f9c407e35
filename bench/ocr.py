"""OCR throughput: pages per second for scanned PDFs and images of text, Hearth versus plain RapidOCR.

Run: `.venv/bin/python bench/ocr.py [--pages 4]` (about 1-3 minutes on 2 cores). Prints ratios measured
in this one process, so a busier machine shifts both sides alike.

Corpora (rendered here with Pillow, so the expected words are known): "prose" (A4 pages of paragraphs at
150 dpi), "table" (dense rows of dates, amounts and codes at 200 dpi), "photo" (a single 3000x2200 image
of a page, as a phone takes it, saved as PNG).
- Baseline: `RapidOCR()` with its defaults (all cores, full-resolution input) on each page image, in this
  process: what a naive integration would call.
- Hearth: `ParserProcess.parse` end to end, in the parser child with its limits: PDF (or image) parsing,
  downscaling to MAX_SIDE, half the cores, heartbeats, JSON back to the parent; the model load (once per
  child) is reported separately.
Word recall: the share of the page's words (lower-cased, letters only) found in the recognised text.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_WORD_TEXT = """
harbour ferry invoice payment quarterly boiler engineer pressure valve october garden tomatoes morning
council meeting minutes treasurer budget library opening hours winter timetable station platform ticket
insurance policy renewal premium claim reference passport photograph appointment dentist clinic
"""
WORDS = _WORD_TEXT.split()


def render(lines: list[str], size: tuple[int, int], font_px: int):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_px)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((int(size[0] * 0.08), int(size[1] * 0.06) + i * int(font_px * 1.6)), line, fill=0, font=font)
    return image


def corpus(kind: str, pages: int, rng: random.Random) -> list[tuple[object, list[str]]]:
    out = []
    for _ in range(pages):
        if kind == "prose":
            lines = [" ".join(rng.choice(WORDS) for _ in range(9)).capitalize() + "." for _ in range(28)]
            out.append((render(lines, (1240, 1754), 26), lines))
        elif kind == "table":
            lines = [
                f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2026  {rng.choice(WORDS):<12} "
                f"{rng.randint(10, 9999)}.{rng.randint(0, 99):02d}  REF{rng.randint(1000, 9999)}"
                for _ in range(40)
            ]
            out.append((render(lines, (1654, 2339), 30), lines))
        else:
            lines = [" ".join(rng.choice(WORDS) for _ in range(7)).capitalize() + "." for _ in range(20)]
            out.append((render(lines, (3000, 2200), 56), lines))
    return out


def recall(text: str, lines: list[str]) -> float:
    want = [w for w in re.findall(r"[a-z]+", " ".join(lines).lower()) if len(w) > 2]
    got = set(re.findall(r"[a-z]+", text.lower()))
    squashed = re.sub(r"[^a-z]", "", text.lower())  # a dropped space still counts the word as read
    return sum(w in got or w in squashed for w in want) / max(len(want), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=4, help="pages per corpus")
    args = parser.parse_args()
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    from storage import cpu
    from storage.parsers.worker import ParseLimits, ParserProcess

    print(f"CPU: {cpu.describe()}; load average {os.getloadavg()[0]:.1f} (shared machine: ratios, not absolutes)")
    rng = random.Random(16)
    naive = RapidOCR()
    with ParserProcess(ParseLimits(seconds=600, ocr_page_seconds=600)) as child:
        started = time.monotonic()
        child.parse("warm.png", _png(render(["warm up"], (400, 120), 30)))
        print(f"Hearth OCR model load in the parser child: {time.monotonic() - started:.1f} s (once per child)")
        header = f"{'corpus':<7} {'pages':>5} {'naive p/s':>10} {'hearth p/s':>11} {'ratio':>6}"
        print(f"{header} {'naive recall':>13} {'hearth recall':>14}")
        for kind in ("prose", "table", "photo"):
            pages = corpus(kind, args.pages, rng)
            started = time.monotonic()
            naive_recall = []
            for image, lines in pages:
                result, _ = naive(np.asarray(image.convert("RGB"))[:, :, ::-1])
                naive_recall.append(recall("\n".join(r[1] for r in result or []), lines))
            naive_s = time.monotonic() - started
            if kind == "photo":
                payloads = [("photo.png", _png(image)) for image, _ in pages]
            else:
                buf = io.BytesIO()
                images = [image.convert("RGB") for image, _ in pages]
                images[0].save(buf, "PDF", resolution=150, save_all=True, append_images=images[1:])
                payloads = [("scan.pdf", buf.getvalue())]
            started = time.monotonic()
            texts = [s.text for name, data in payloads for d in child.parse(name, data) for s in d.sections]
            hearth_s = time.monotonic() - started
            hearth_recall = [recall(t, lines) for t, (_, lines) in zip(texts, pages, strict=True)]
            n = len(pages)
            print(
                f"{kind:<7} {n:>5} {n / naive_s:>10.2f} {n / hearth_s:>11.2f} {naive_s / hearth_s:>5.2f}x "
                f"{sum(naive_recall) / n:>13.3f} {sum(hearth_recall) / n:>14.3f}"
            )


def _png(image) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
