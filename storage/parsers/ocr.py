"""Offline OCR for scanned PDF pages and images of text (RapidOCR: PP-OCRv4 on onnxruntime).

The models ship inside the `rapidocr-onnxruntime` wheel, so nothing is downloaded, ever; this module runs
only in the parser child (storage/parsers/worker.py), under its memory limit. Every recognised page costs
seconds, not milliseconds, so the child sends a heartbeat before each page (`on_page`) and the parent gives
each page its own time budget instead of the whole file one.

Images are refused by their pixel count before they are decoded (a decompression bomb is a few KB of
PNG that inflates to gigabytes), and downscaled so the longer side is at most `MAX_SIDE`: the detector
works at ~736 px anyway, so larger inputs only cost time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from storage.parsers.model import ParsedDoc, ParseError, Section

MAX_PIXELS = 60_000_000  # an A4 page scanned at 600 dpi is 35 MP; beyond this is a bomb or a poster
MAX_SIDE = 2500  # pixels of the longer side OCR sees (300 dpi A4 is 3508: text stays legible)
MAX_OCR_PAGES = 500  # scanned pages recognised per file; a bound on minutes, not on real books
MIN_SCORE = 0.5  # recogniser confidence below which a line is noise (speckles, ruled lines)

on_page: Callable[[], None] | None = None  # set by the parser child: a heartbeat before each page
_engine: Any = None


_LACKING = "scanned text needs OCR, which this installation lacks (rapidocr-onnxruntime)"


def available() -> bool:
    """Whether OCR can run here: the desktop bundle leaves it out (OpenCV alone is ~190 MB)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "onnxruntime", "cv2", "PIL"))


def check_pixels(width: int, height: int, what: str) -> None:
    if width * height > MAX_PIXELS:
        raise ParseError(f"{what} is {width}x{height} pixels, over the {MAX_PIXELS // 10**6} MP limit for OCR")


def image_text(image: Any) -> str:
    """The text in one PIL image, lines in reading order (top to bottom, then left to right)."""
    if on_page is not None:
        on_page()
    import numpy as np

    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    result, _ = _ocr()(np.asarray(image)[:, :, ::-1])  # RapidOCR reads OpenCV's BGR order
    lines = [(box, text) for box, text, score in (result or []) if score >= MIN_SCORE and text.strip()]
    lines.sort(key=lambda line: (round(min(p[1] for p in line[0]) / 10), min(p[0] for p in line[0])))
    return "\n".join(text.strip() for _, text in lines)


def parse_image(data: bytes, title: str) -> list[ParsedDoc]:
    """An image file (a photo of a page, a screenshot): one section, marked as OCR."""
    text = image_file_text(data)
    if not text.strip():
        raise ParseError("no text found in the image (OCR recognised none)")
    return [ParsedDoc(title=title, sections=[Section(text, ocr=True)])]


def image_file_text(data: bytes) -> str:
    """An image file's text; ParseError for images Pillow cannot read or that are too large."""
    if not available():
        raise ParseError(_LACKING)
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # check_pixels below does it, by the header, with a clearer reason
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        check_pixels(image.width, image.height, "the image")
        image.load()
    except ParseError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ParseError(f"corrupt or unsupported image ({type(exc).__name__})") from exc
    return image_text(image)


def _ocr() -> Any:
    """The recogniser, loaded once per child (~2 s; its three models ship in the wheel)."""
    global _engine
    if _engine is None:
        try:
            from rapidocr_onnxruntime import RapidOCR

            threads = max(1, (os.cpu_count() or 2) // 2)  # half the cores: chat keeps the rest
            _engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, print_verbose=False)
        except (ImportError, OSError) as exc:  # a partial install: the package without its models or runtime
            raise ParseError(_LACKING) from exc
    return _engine
