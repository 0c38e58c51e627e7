#!/usr/bin/env bash
# cargo, with the `gemm` crate (burn-flex's f32 GEMM; omni calls it for Whisper's
# 1500-row products, the speech decoder's re-run and short attention) held to its
# AVX2/FMA kernels on a CPU that has AVX-512 — a bench-only stand-in for an AVX2 CPU
# (AMD EPYC without AVX-512), beside `OMNI_KERNELS=avx2` for omni's own kernels.
# `gemm` picks its kernels at run time by CPUID and has no switch; this makes a
# patched copy of `gemm-common` from the cargo registry (outside the repository: never
# committed) whose AVX-512 test answers false, and runs cargo with a [patch] for it.
# Use a target dir of its own (the patched crate rebuilds everything above it), e.g.
#   CARGO_TARGET_DIR=~/.cache/omni-target-gemm-avx2 scripts/cargo_gemm_avx2.sh build --release --example attn_probe
# `scripts/bench.sh` takes it as its cargo: BENCH_CARGO=scripts/cargo_gemm_avx2.sh.
set -euo pipefail
REAL_CARGO="${REAL_CARGO:-$(command -v cargo)}"
SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/gemm-common-0.19.0 | head -1)
DST="${GEMM_AVX2_DIR:-$HOME/.cache/gemm-common-0.19.0-avx2}"
if [ ! -f "$DST/.patched" ]; then
    rm -rf "$DST"
    cp -r "$SRC" "$DST"
    python3 - "$DST/src/lib.rs" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = '''macro_rules! feature_detected {
    ($tt: tt) => {
        ::std::arch::is_x86_feature_detected!($tt)
    };
}'''
new = '''macro_rules! feature_detected {
    ("avx512f") => {
        false
    };
    ($tt: tt) => {
        ::std::arch::is_x86_feature_detected!($tt)
    };
}'''
assert s.count(old) == 1, "gemm-common's feature_detected! is not the expected one"
open(p, "w").write(s.replace(old, new))
PY
    touch "$DST/.patched"
fi
# The [patch] rewrites Cargo.lock's gemm-common entry (a path source): put the
# repository's lock back afterwards (don't run another cargo on this checkout meanwhile).
LOCK="$(git rev-parse --show-toplevel)/Cargo.lock"
SAVED=$(mktemp)
cp "$LOCK" "$SAVED"
trap 'cp "$SAVED" "$LOCK"; rm -f "$SAVED"' EXIT
"$REAL_CARGO" --config "patch.crates-io.gemm-common.path=\"$DST\"" "$@"
