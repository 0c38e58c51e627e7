#!/usr/bin/env bash
# One training step of each stage, omni (burn `flex`, f32) vs PyTorch CPU, same
# weights, same batch, same thread count (see scripts/bench_train_torch.py for the
# shape and what a step is). Prints the JSON lines of both sides and a markdown
# table row per stage with the medians and the omni/PyTorch ratio, and appends
# the raw lines to benches/raw/train.jsonl.
#
# Environment: BENCH_THREADS (default 2), OMNI_TRAIN_BENCH_DIR (default
# /tmp/omni_train_bench, deleted at the end unless BENCH_KEEP=1),
# OMNI_TRAIN_BENCH_RUNS (default 3), OMNI_TRAIN_BENCH_LAYERS (LLM layers, default 2),
# PYTHON (torch + transformers 4.43 + openai-whisper; default /work/venvs/real/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${BENCH_THREADS:-2}"
export BENCH_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
export OMNI_TRAIN_BENCH_DIR="${OMNI_TRAIN_BENCH_DIR:-/tmp/omni_train_bench}"
PY="${PYTHON:-/work/venvs/real/bin/python}"
mkdir -p benches/raw
[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$OMNI_TRAIN_BENCH_DIR"' EXIT
[ -f "$OMNI_TRAIN_BENCH_DIR/batch.safetensors" ] || "$PY" scripts/bench_train_torch.py make "$OMNI_TRAIN_BENCH_DIR"
cargo bench --features train --bench train_bench --no-run
out=$(mktemp)
echo "== load average at start: $(cut -d' ' -f1 /proc/loadavg)" >&2
cargo bench --features train --bench train_bench | grep '^{' | tee -a "$out"
"$PY" scripts/bench_train_torch.py run "$OMNI_TRAIN_BENCH_DIR" | grep '^{' | tee -a "$out"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
simd=$(grep -o -w 'avx2\|avx512f\|fma\|f16c' /proc/cpuinfo | sort -u | tr '\n' ' ')
python3 - "$out" "$cpu" "$simd" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
meta = {"cpu": sys.argv[2], "simd": sys.argv[3].strip()}
with open("benches/raw/train.jsonl", "a") as f:
    for r in rows:
        f.write(json.dumps({**r, **meta}) + "\n")
for stage in (1, 2):
    o = next(r for r in rows if r["side"] == "omni" and r["stage"] == stage)
    t = next(r for r in rows if r["side"] == "torch" and r["stage"] == stage)
    print(f"| stage {stage} step | {o['median_s']:.2f} s [N={o['runs']}] | {t['median_s']:.2f} s [N={t['runs']}] | "
          f"{o['median_s'] / t['median_s']:.2f} | loss {o['first_loss']:.4f} vs {t['first_loss']:.4f} |")
print(f"CPU: {meta['cpu']}, SIMD: {meta['simd']}")
PY
