#!/usr/bin/env bash
# Python venv for the bench's anchors (scripts/bench_llamacpp.py, scripts/bench_ct2.py):
# llama.cpp through llama-cpp-python (built from source by pip, for this CPU), gguf (writes
# the GGUF files, llama.cpp's quant formats in numpy), CTranslate2 (prebuilt wheel).
# Idempotent: does nothing when the venv already has the pinned versions. Not run by CI.
#   ANCHOR_VENV  where (default ~/.cache/omni-bench-venv)
set -euo pipefail
VENV="${ANCHOR_VENV:-$HOME/.cache/omni-bench-venv}"
PINS=(numpy==2.4.6 gguf==0.19.0 safetensors==0.8.0 ctranslate2==4.8.5)
LLAMA_PIN=llama-cpp-python==0.3.36
# llama.cpp build flags (recorded by bench_llamacpp.py through llama_print_system_info()).
# On a CPU with AMX, GGML_NATIVE=ON builds llama.cpp's AMX path, which crashed (SIGSEGV in the
# first q8_0 decode) in the VMs here; there, set LLAMA_CMAKE_ARGS to GGML_NATIVE=OFF with the
# CPU's other features on (see benches/RESULTS.md, the Intel run) and ANCHOR_VENV to a new venv.
# The AVX2 code paths on an AVX-512 machine (benches/RESULTS.md, "AVX-512 and AMX off on both
# sides"): ANCHOR_VENV=~/.cache/omni-bench-venv-avx2 LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF
# -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF
# -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF
# -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF", then
# `OMNI_KERNELS=avx2 ANCHOR_VENV=… scripts/bench.sh quant`; for the PyTorch rows
# `OMNI_KERNELS=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
# MKL_ENABLE_INSTRUCTIONS=AVX2 scripts/bench.sh`.
export CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

want="${PINS[*]} $LLAMA_PIN"
[ -f "$VENV/.pins" ] && [ "$(cat "$VENV/.pins")" = "$want" ] && exit 0
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
nice -n 10 "$VENV/bin/pip" install -q "${PINS[@]}"
echo "== building $LLAMA_PIN from source (CMAKE_ARGS=$CMAKE_ARGS; takes a while)" >&2
# --no-cache-dir: pip would otherwise reuse a wheel built earlier with other CMAKE_ARGS.
nice -n 10 "$VENV/bin/pip" install -q --no-cache-dir --no-binary llama-cpp-python "$LLAMA_PIN"
echo "$want" > "$VENV/.pins"
