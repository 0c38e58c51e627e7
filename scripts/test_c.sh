#!/usr/bin/env bash
# The C side of omni: builds libomni (omni-ffi), the C example (examples/c) and the
# C tests (tests/c), then runs
#   1. the example, linked with libomni.so and with libomni.a, on the demo model (text printed as it
#      streams, answer written to a WAV; the question read as WAV, then as MP3),
#   2. the tests natively (all groups),
#   3. the tests under valgrind (memcheck: 0 errors, 0 bytes definitely lost) for the groups in
#      $OMNI_VALGRIND_GROUPS (default "misuse turn": every misuse case and full turns; ~3 min),
#   4. all tests built with AddressSanitizer + UBSan (LeakSanitizer on), which covers the slow
#      multi-session groups (threads, orphan) that valgrind would take ~5 more minutes for.
# Set OMNI_VALGRIND_GROUPS="misuse turn threads orphan" to run everything under valgrind.
# Uses $CARGO_TARGET_DIR (default ./target); outputs go to $CARGO_TARGET_DIR/c.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
lib="$CARGO_TARGET_DIR/release"
out="$CARGO_TARGET_DIR/c"
mkdir -p "$out"
CC="${CC:-cc}"
start=$(date +%s)
stamp() { echo "== [c: $(( $(date +%s) - start ))s] $*"; }

# `--workspace --lib --tests` resolves features exactly as `cargo test --workspace` does, so
# libomni is linked from the crates that build already compiled (`-p omni-ffi` alone would
# resolve shared dependencies' features differently and rebuild burn).
stamp "cargo build --release --workspace --lib --tests (libomni.so, libomni.a)"
cargo build --release --workspace --lib --tests
# The library's SONAME is libomni.so.0: programs linked with -lomni load that name.
readelf -d "$lib/libomni.so" | grep -q 'SONAME.*\[libomni\.so\.0\]' || { echo "libomni.so has no SONAME libomni.so.0" >&2; exit 1; }
ln -sf libomni.so "$lib/libomni.so.0"

stamp "build the example and the tests"
make -s -C examples/c OUT="$out" CARGO_TARGET_DIR="$CARGO_TARGET_DIR"
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -g -Wall -Wextra -Werror -Iinclude -Iexamples/c)
ldflags=(-L"$lib" -lomni -Wl,-rpath,"$lib" -lpthread -lm)
"$CC" "${cflags[@]}" -O1 tests/c/test_ffi.c "${ldflags[@]}" -o "$out/test_ffi"
"$CC" "${cflags[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_ffi.c \
  "${ldflags[@]}" -o "$out/test_ffi_asan"
"$CC" "${cflags[@]}" -O1 tests/c/test_turns.c "${ldflags[@]}" -o "$out/test_turns"
"$CC" "${cflags[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_turns.c \
  "${ldflags[@]}" -o "$out/test_turns_asan"

# The shared build answers the WAV question, the static one its MP3 copy (omni_audio_read).
for run in chat:question.wav chat-static:question.mp3; do
  exe=${run%%:*}
  question=tests/fixtures/speech/${run#*:}
  stamp "example: $out/$exe on the demo model ($question)"
  rm -f "$out/answer.wav"
  "$out/$exe" --output "$out/answer.wav" "$question"
  size=$(stat -c %s "$out/answer.wav")
  if [ "$size" -le 44 ]; then
    echo "$exe wrote no audio ($out/answer.wav: $size bytes)" >&2
    exit 1
  fi
done

stamp "tests (native)"
"$out/test_ffi"
"$out/test_turns"

groups="${OMNI_VALGRIND_GROUPS:-misuse turn}"
if ! command -v valgrind >/dev/null; then
  if command -v sudo >/dev/null && [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind
fi
stamp "tests under valgrind: $groups"
# shellcheck disable=SC2086
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  "$out/test_ffi" $groups 2>"$out/valgrind.log" || {
  tail -n 80 "$out/valgrind.log" >&2
  echo "valgrind found errors or definite leaks (full log: $out/valgrind.log)" >&2
  exit 1
}
grep -E 'passed|ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:' "$out/valgrind.log" || true
turn_groups="${OMNI_VALGRIND_TURN_GROUPS:-lifecycle}"  # live runs under ASan below (valgrind: ~10x slower)
stamp "turn tests under valgrind: $turn_groups"
# shellcheck disable=SC2086
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  "$out/test_turns" $turn_groups 2>"$out/valgrind-turns.log" || {
  tail -n 80 "$out/valgrind-turns.log" >&2
  echo "valgrind found errors or definite leaks in test_turns (full log: $out/valgrind-turns.log)" >&2
  exit 1
}
grep -E 'passed|ERROR SUMMARY|definitely lost:' "$out/valgrind-turns.log" || true

stamp "tests under AddressSanitizer + UBSan (all groups)"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$out/test_ffi_asan"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$out/test_turns_asan"

stamp "C tests passed"
