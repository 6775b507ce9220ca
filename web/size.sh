#!/usr/bin/env bash
# Prints the gzipped size of what a page loads: the wasm module, the wasm-bindgen glue and the
# package's own JavaScript (run web/build.sh first).
set -euo pipefail
cd "$(dirname "$0")"
gz() { gzip -9 -c "$1" | wc -c; }
total=0
for f in pkg/edgebus_wasm_bg.wasm pkg/edgebus_wasm.js dist/*.js; do
  [ -f "$f" ] || { echo "size.sh: $f missing (run web/build.sh)" >&2; exit 1; }
  n=$(gz "$f")
  total=$((total + n))
  printf '%-32s %8d bytes gzipped (%d raw)\n' "$f" "$n" "$(wc -c <"$f")"
done
printf '%-32s %8d bytes gzipped (%d KiB)\n' "total" "$total" "$((total / 1024))"
