"""What this CPU computes natively: the embedder's precision and the trainer's dtype both hang on it.

bf16 pays only with hardware bf16 matmuls (Intel AMX or AVX512-BF16): emulated it is slower than fp32, and
OpenVINO's bf16 hint fails outright on an AVX2-only oneDNN. int8 pays only with VNNI dot products (0.58x f32
on AVX2 alone). `HEARTH_AVX2_ONLY=1` makes Hearth choose as on a CPU with neither, so the path an AVX2-only
laptop gets can be run and tested on any x86 machine (bench/avx2_path.sh sets it).
"""

from __future__ import annotations

import functools
import os
import platform

AVX2_ONLY_ENV = "HEARTH_AVX2_ONLY"
# The flags that pick a numeric path somewhere in Hearth or its libraries (what benchmarks print).
DECISIVE = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def native_bf16() -> bool:
    """bf16 matmuls in hardware (Intel AMX or AVX512-BF16)."""
    return not _avx2_only() and bool({"amx_bf16", "avx512_bf16"} & _flags())


def int8_dot() -> bool:
    """int8 dot products in hardware (VNNI: AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    return not _avx2_only() and bool({"avx512_vnni", "avx_vnni", "amx_int8"} & _flags())


def describe() -> str:
    """One line naming the CPU and the decisive flags it has, printed beside every benchmark's numbers."""
    have = " ".join(f for f in DECISIVE if f in _flags()) or "none of " + "/".join(DECISIVE)
    capped = f"; capped at AVX2 ({AVX2_ONLY_ENV}=1)" if _avx2_only() else ""
    return f"{_cpuinfo().get('model name', platform.machine())}, {os.cpu_count()} logical CPUs; {have}{capped}"


def _avx2_only() -> bool:
    return os.environ.get(AVX2_ONLY_ENV) == "1"


def _flags() -> frozenset[str]:
    return frozenset(_cpuinfo().get("flags", "").split())


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first CPU's fields from /proc/cpuinfo on Linux (empty elsewhere: no fast path is assumed)."""
    if platform.system() != "Linux":
        return {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields
