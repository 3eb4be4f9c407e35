#!/usr/bin/env bash
# Create ./.venv and install Hearth into it; `--test` adds the test tools.
#
# llama-cpp-python compiles llama.cpp on install (about 9 minutes on 2 cores; pip caches the wheel):
# - LLAVA_BUILD=OFF skips the multimodal library Hearth does not use (halves the build);
# - on x86_64 the AMX kernels are compiled out: on AMX-capable Xeons they crash with a segfault in
#   ggml_backend_amx_mul_mat (seen with 0.3.36), and a 135M-parameter model gains nothing from them.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
if [[ "${1:-}" == "--test" ]]; then extras="[test]"; fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip

export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
if [[ "$(uname -m)" == "x86_64" ]]; then
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    export CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx"
fi
.venv/bin/python -m pip install --quiet --editable ".${extras}"
echo "Hearth is installed in $(pwd)/.venv — run .venv/bin/hearth"
