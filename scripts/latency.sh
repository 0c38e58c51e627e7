#!/usr/bin/env bash
# End-of-speech -> first-audio latency, median of several turns, with the stage
# breakdown: on the demo model and on a mid-size random-weight model (written once to
# ${OMNI_MIDSIZE:-/tmp/omni-midsize} by scripts/make_midsize_model.py; needs the Python
# reference environment of tests/reference/requirements.txt, e.g. PYTHON=.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MID=${OMNI_MIDSIZE:-/tmp/omni-midsize}
cargo build --release --example latency
cargo run --release --example latency -- --turns 5 --label "demo model (tiny)"
[ -f "$MID/model/config.json" ] || "$PY" scripts/make_midsize_model.py "$MID"
for dt in f32 f16; do
  cargo run --release --example latency -- --model "$MID/model" --vocoder "$MID/vocoder" \
    --turns 3 --max-new-tokens 40 --dtype $dt --label "mid-size ($dt)"
done
