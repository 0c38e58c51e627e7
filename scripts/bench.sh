#!/usr/bin/env bash
# omni (burn, CPU `flex` backend) vs PyTorch CPU on the same shapes, the same
# random weights and the same thread count. Builds and runs the Rust bench
# (benches/omni_bench.rs, which writes the random checkpoints), runs the PyTorch
# peer (scripts/bench_torch.py) on those checkpoints, prints a markdown table of
# medians and omni/PyTorch ratios and writes it into benches/RESULTS.md.
#
# Environment:
#   BENCH_THREADS    threads on both sides (default 2: RAYON_NUM_THREADS / torch.set_num_threads)
#   OMNI_BENCH_ROWS  row groups (default mel,whisper,llm,llm8b,sd,vocoder)
#   OMNI_BENCH_DIR   scratch folder for the checkpoints (~4.5 GB; default /tmp/omni_bench, emptied at the
#                    start and deleted at the end unless BENCH_KEEP=1)
#   PYTHON           Python with torch, transformers 4.43, openai-whisper, safetensors, fairseq
#                    (default /work/venv/ref/bin/python, made by scripts/bench_torch_setup.sh
#                    when it is missing)
#   OMNI_BENCH_PREFILL_RUNS, OMNI_BENCH_SD_FULL_RUNS  repetitions of the two slowest rows (default 3)
#   BENCH_RETRY      1 (default): row groups timed while other processes kept >= 0.25 cores busy
#                    (measured from /proc/stat) are timed once more, after waiting up to 2 min for
#                    a quiet machine; the report keeps the less disturbed run. 0: no retry.
#
# `scripts/bench.sh quant`: omni f16 vs q8_0 vs q4_0 weights (1B-shape prefill/decode, one 8B
# layer decode; QUANT_ROWS, default llm,llm8b,whisper) with anchors in the same run: llama.cpp
# (scripts/bench_llamacpp.py: the same weights as GGUF f16/q8_0/q4_0) and, for the `whisper` rows,
# CTranslate2's Whisper encoder (scripts/bench_ct2.py, f32 and int8). The anchors' venv is made by
# scripts/bench_anchors_setup.sh (llama-cpp-python built from source; ANCHOR_VENV, default
# ~/.cache/omni-bench-venv); the CTranslate2 model is converted with $PYTHON (torch, transformers,
# ctranslate2). BENCH_ANCHORS=0: omni only. Written between the quant-table markers of
# benches/RESULTS.md with the CPU model and SIMD flags every row records.
# OMNI_KERNELS=portable times the scalar kernels.
# BENCH_CARGO=scripts/cargo_gemm_avx2.sh (with a CARGO_TARGET_DIR of its own): the `gemm` crate
# held to its AVX2 kernels too — with OMNI_KERNELS=avx2 and PyTorch's ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2, an AVX2 CPU on an AVX-512 one (each omni
# row then records gemm_crate: avx2).
#
# The machine is shared: each row records `other_cores` and the table flags disturbed rows
# (PyTorch's OpenMP threads slow down several-fold when another process holds a core).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS="${BENCH_THREADS:-2}"
export BENCH_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/omni-target}"
export OMNI_BENCH_DIR="${OMNI_BENCH_DIR:-/tmp/omni_bench}"
CARGO="${BENCH_CARGO:-cargo}"
case "$CARGO" in *cargo_gemm_avx2.sh) export OMNI_BENCH_GEMM=avx2 ;; esac
export OMNI_BENCH_ROWS="${OMNI_BENCH_ROWS:-mel,whisper,llm,llm8b,sd,vocoder}"
PY="${PYTHON:-/work/venv/ref/bin/python}"
RAW=benches/raw

if [ "${1:-}" = quant ]; then
    mkdir -p "$OMNI_BENCH_DIR" "$RAW"
    [ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$OMNI_BENCH_DIR"' EXIT
    QROWS="${QUANT_ROWS:-llm,llm8b,whisper}"
    load_start=$(cut -d' ' -f1 /proc/loadavg)
    echo "== load average at start: $load_start" >&2
    OMNI_BENCH_ROWS="$QROWS" OMNI_BENCH_LLM_DTYPES="${OMNI_BENCH_LLM_DTYPES:-f16burn,f16,q8_0,q4_0}" \
        OMNI_BENCH_OUT="$RAW/quant.jsonl" "$CARGO" bench --bench omni_bench
    rm -f "$RAW/llamacpp.jsonl" "$RAW/ct2.jsonl"
    if [ "${BENCH_ANCHORS:-1}" = 1 ]; then
        # Anchors on the checkpoints the omni bench just wrote: llama.cpp (GGUF f16/q8_0/q4_0) and
        # CTranslate2 (Whisper encoder, converted with the torch Python $PYTHON).
        scripts/bench_anchors_setup.sh
        AV="${ANCHOR_VENV:-$HOME/.cache/omni-bench-venv}/bin/python"
        "$AV" scripts/bench_llamacpp.py --dir "$OMNI_BENCH_DIR" --out "$RAW/llamacpp.jsonl" --rows "$QROWS"
        if [[ ",$QROWS," == *,whisper,* ]]; then
            if "$PY" -c 'import ctranslate2, transformers, torch' 2>/dev/null; then
                "$PY" -W ignore scripts/bench_ct2.py convert --dir "$OMNI_BENCH_DIR"
                "$AV" scripts/bench_ct2.py run --dir "$OMNI_BENCH_DIR" --out "$RAW/ct2.jsonl"
            else
                echo "== no CTranslate2 anchor: $PY lacks ctranslate2/transformers/torch (set PYTHON)" >&2
            fi
        fi
    fi
    ANCH=()
    [ -f "$RAW/llamacpp.jsonl" ] && ANCH+=(--llamacpp "$RAW/llamacpp.jsonl")
    [ -f "$RAW/ct2.jsonl" ] && ANCH+=(--ct2 "$RAW/ct2.jsonl")
    export BENCH_LOAD="1-min load average $load_start at start, $(cut -d' ' -f1 /proc/loadavg) at end (see other_cores per row)"
    python3 scripts/bench_torch.py quant --omni "$RAW/quant.jsonl" "${ANCH[@]}" --md benches/RESULTS.md
    exit 0
fi

t0=$(date +%s)
if [ -z "${PYTHON:-}" ] && [ ! -x "$PY" ]; then
    echo "== no $PY: making the PyTorch venv (scripts/bench_torch_setup.sh, ~6 GB)" >&2
    scripts/bench_torch_setup.sh
fi
# BENCH_KEEP=1 also keeps what an earlier run left there (the checkpoints of rows this run does
# not time, e.g. llm_probe's 1B file). Checkpoints and GGUF copies found there are reused when
# their size fits (the generator is seeded); after changing the generator, run without BENCH_KEEP.
[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$OMNI_BENCH_DIR"
mkdir -p "$OMNI_BENCH_DIR" "$RAW"
if [ "${BENCH_KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$OMNI_BENCH_DIR"' EXIT
fi
load_start=$(cut -d' ' -f1 /proc/loadavg)
echo "== load average at start: $load_start (timings are only meaningful on an otherwise idle machine)" >&2

echo "== building (cargo bench --no-run)" >&2
"$CARGO" bench --bench omni_bench --no-run
t1=$(date +%s)

# Busy jiffies of the whole machine (user+nice+system+irq+softirq+steal).
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
# Waits (at most $1 s) until other processes use < 0.3 cores over 5 s.
wait_quiet() {
    local deadline=$(( $(date +%s) + $1 )) a b
    while [ "$(date +%s)" -lt "$deadline" ]; do
        a=$(busy_jiffies); sleep 5; b=$(busy_jiffies)
        [ $((b - a)) -lt 150 ] && return 0
        echo "   (machine busy: $(( (b - a) / 5 ))% of a core used by others; waiting)" >&2
    done
}

echo "== omni (threads: $THREADS)" >&2
wait_quiet 60
OMNI_BENCH_OUT="$RAW/omni.jsonl" "$CARGO" bench --bench omni_bench
t2=$(date +%s)

echo "== PyTorch (threads: $THREADS)" >&2
wait_quiet 60
"$PY" -W ignore scripts/bench_torch.py run --dir "$OMNI_BENCH_DIR" --out "$RAW/torch.jsonl" --rows "$OMNI_BENCH_ROWS"
t3=$(date +%s)

OMNI_FILES="$RAW/omni.jsonl"
TORCH_FILES="$RAW/torch.jsonl"
rm -f "$RAW/omni_retry.jsonl" "$RAW/torch_retry.jsonl"
if [ "${BENCH_RETRY:-1}" = 1 ]; then
    again=$("$PY" scripts/bench_torch.py busy "$RAW/omni.jsonl")
    if [ -n "$again" ]; then
        echo "== omni again, disturbed groups: $again" >&2
        wait_quiet 120
        OMNI_BENCH_ROWS="$again" OMNI_BENCH_OUT="$RAW/omni_retry.jsonl" "$CARGO" bench --bench omni_bench
        OMNI_FILES="$OMNI_FILES,$RAW/omni_retry.jsonl"
    fi
    again=$("$PY" scripts/bench_torch.py busy "$RAW/torch.jsonl")
    if [ -n "$again" ]; then
        echo "== PyTorch again, disturbed groups: $again" >&2
        wait_quiet 120
        "$PY" -W ignore scripts/bench_torch.py run --dir "$OMNI_BENCH_DIR" --out "$RAW/torch_retry.jsonl" --rows "$again"
        TORCH_FILES="$TORCH_FILES,$RAW/torch_retry.jsonl"
    fi
fi
t4=$(date +%s)
load_end=$(cut -d' ' -f1 /proc/loadavg)

export BENCH_LOAD="1-min load average $load_start at start, $load_end at end (includes the bench's own threads; see other_cores per row)"
export BENCH_WALL="build $((t1 - t0)) s, omni $((t2 - t1)) s, PyTorch $((t3 - t2)) s, retries $((t4 - t3)) s"
"$PY" scripts/bench_torch.py report --omni "$OMNI_FILES" --torch "$TORCH_FILES" --md benches/RESULTS.md
echo "== scripts/bench.sh took $(( $(date +%s) - t0 )) s ($BENCH_WALL)" >&2
