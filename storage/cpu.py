"""Whether this CPU computes in bf16 natively: the embedder's precision and the trainer's dtype both hang on it.

bf16 pays only with hardware bf16 matmuls (Intel AMX or AVX512-BF16); emulated it is slower than fp32, and
OpenVINO's bf16 hint fails outright on an AVX2-only oneDNN. `HEARTH_NO_BF16=1` takes the no-bf16 path on any
CPU, so the path an AVX2-only laptop gets can be run and tested here (bench/avx2_path.sh sets it).
"""

from __future__ import annotations

import functools
import os
import platform

NO_BF16_ENV = "HEARTH_NO_BF16"


def native_bf16() -> bool:
    return os.environ.get(NO_BF16_ENV) != "1" and _flags_say_bf16()


@functools.cache
def _flags_say_bf16() -> bool:
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags.split()))
