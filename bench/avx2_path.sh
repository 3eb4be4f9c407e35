#!/usr/bin/env bash
# Run a command on the numeric paths of an AVX2-only CPU (an AMD EPYC without AVX-512, say) on any x86-64
# machine: llama.cpp built without AVX-512/AMX (-DGGML_NATIVE=OFF keeps AVX2, FMA, F16C, BMI2), torch's
# kernels, MKL and oneDNN (OpenVINO's too) held to AVX2, and Hearth choosing as on a CPU without bf16 or
# VNNI (HEARTH_AVX2_ONLY=1: fp32 embeddings and training). The build is cached.
#
#     bench/avx2_path.sh .venv/bin/python bench/probe.py
#     bench/avx2_path.sh .venv/bin/python -m pytest -m 'not soak'
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${HEARTH_AVX2_DIR:-$root/.avx2}"
python="${PYTHON:-$root/.venv/bin/python}"
version="$("$python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
if [ ! -f "$dir/site/llama_cpp/__init__.py" ]; then
    mkdir -p "$dir"
    echo "building llama-cpp-python $version for AVX2 (about 10 minutes on 2 cores) in $dir" >&2
    "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$dir" "llama-cpp-python==$version"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF" \
        "$python" -m pip install --quiet --no-deps --no-cache-dir --target "$dir/site" "$dir/llama_cpp_python-$version.tar.gz"
fi
export PYTHONPATH="$dir/site:$root${PYTHONPATH:+:$PYTHONPATH}"
export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 HEARTH_AVX2_ONLY=1
"$python" - <<'PY'
import llama_cpp
info = llama_cpp.llama_print_system_info().decode()
assert "AVX2 = 1" in info and "AVX512 = 1" not in info, f"not the AVX2 build: {info}"
PY
exec "$@"
