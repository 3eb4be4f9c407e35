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


def native_bf16() -> bool:
    """bf16 matmuls in hardware (Intel AMX or AVX512-BF16)."""
    return not _avx2_only() and bool({"amx_bf16", "avx512_bf16"} & _flags())


def int8_dot() -> bool:
    """int8 dot products in hardware (VNNI: AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    return not _avx2_only() and bool({"avx512_vnni", "avx_vnni", "amx_int8"} & _flags())


def _avx2_only() -> bool:
    return os.environ.get(AVX2_ONLY_ENV) == "1"


@functools.cache
def _flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo on Linux (empty elsewhere: no fast path is assumed)."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return frozenset()
