#!/usr/bin/env bash
# Regenerates include/omni.h from omni-ffi/src with the pinned cbindgen.
#   scripts/gen_header.sh           write include/omni.h
#   scripts/gen_header.sh --check   fail (exit 1, with a diff) if include/omni.h is not what cbindgen makes now
# Installs the pinned cbindgen when it is missing or another version:
#   cargo install cbindgen --version 0.29.2 --locked
set -euo pipefail
CBINDGEN_VERSION=0.29.2
cd "$(dirname "$0")/.."
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked
fi
out=include/omni.h
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
fi
# The same invocation as the before-stop hook: from omni-ffi/, crate dir `.`.
(cd omni-ffi && cbindgen --quiet -c cbindgen.toml -o "$( [ "${out#/}" != "$out" ] && echo "$out" || echo "../$out")" .)
if [ "${1:-}" = "--check" ]; then
  if ! diff -u include/omni.h "$out"; then
    echo "include/omni.h is stale: run scripts/gen_header.sh and commit it" >&2
    exit 1
  fi
  echo "include/omni.h is up to date (cbindgen $CBINDGEN_VERSION)"
fi
