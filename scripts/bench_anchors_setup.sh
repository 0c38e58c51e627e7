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
