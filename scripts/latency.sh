#!/usr/bin/env bash
# End-of-speech -> first-audio latency, median of several turns, with the stage
# breakdown: on the demo model and on a mid-size random-weight model (written once to
# ${OMNI_MIDSIZE:-/tmp/omni-midsize} by scripts/make_midsize_model.py; needs the Python
# reference environment of tests/reference/requirements.txt, e.g. PYTHON=.venv/bin/python).
#
# Explicit turns (end_turn), then live turns (the question pushed in real time, the voice
# detector ends the turn after 640 ms of silence) without and with the speculative start:
# those count from the actual end of speech, the endpoint wait included.
# Without fairseq the mid-size model is written with --no-vocoder and runs with the demo vocoder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MID=${OMNI_MIDSIZE:-/tmp/omni-midsize}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); SIMD: $(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|avx512_fp16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
cargo build --release --example latency
run() { cargo run --release --example latency -- "$@"; }
run --turns 5 --label "demo model (tiny)"
run --turns 5 --label "demo model (tiny)" --live --no-speculative
run --turns 5 --label "demo model (tiny)" --live
if [ ! -f "$MID/model/config.json" ]; then
  "$PY" -c "import fairseq" 2>/dev/null && "$PY" scripts/make_midsize_model.py "$MID" \
    || "$PY" scripts/make_midsize_model.py "$MID" --no-vocoder
fi
voc="$MID/vocoder"; [ -f "$voc/config.json" ] || voc=tests/fixtures/vocoder/tiny
for dt in f32 f16; do
  run --model "$MID/model" --vocoder "$voc" --turns 3 --max-new-tokens 40 --dtype $dt --label "mid-size ($dt)"
done
for spec in --no-speculative ""; do
  # shellcheck disable=SC2086
  run --model "$MID/model" --vocoder "$voc" --turns 3 --max-new-tokens 40 --dtype f32 --label "mid-size (f32)" --live $spec
done
