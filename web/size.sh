#!/usr/bin/env bash
# Prints the gzipped size of what a page loads for each entry point of the package (the wasm
# module, the wasm-bindgen glue and the package's own JavaScript the entry imports), and fails
# when one is over its budget (run web/build.sh first):
#   edgebus       core NATS + JetStream + KV + object store + link   budget 150 KiB
#   edgebus/core  core NATS + link                                   budget  60 KiB
# (the second is measured once web/build.sh builds it: pkg-core/ and dist/core.js).
# Reached so far (README, "bundle"): edgebus 418 KiB (wasm 389), edgebus/core 86 KiB
# (wasm 75); both over budget. Each step, what did not pay, and where the bytes are now
# (twiggy on a build with names kept) are in the README.
# EDGEBUS_SIZE_REPORT_ONLY=1 prints without failing.
set -euo pipefail
cd "$(dirname "$0")"
gz() { gzip -9 -c "$1" | wc -c; }

# The package's JavaScript files `$1` loads, itself included (static imports, followed).
imports() {
  local seen=" " queue=("$1") f dir dep
  while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    case "$seen" in *" $f "*) continue ;; esac
    seen="$seen$f "
    dir=$(dirname "$f")
    for dep in $(grep -oE '(from|import)[[:space:]]*"\./[^"]+\.js"' "$f" | grep -oE '"\./[^"]+"' | tr -d '"'); do
      queue+=("$dir/${dep#./}")
    done
  done
  echo "$seen"
}

over=0
entry() {  # name budget_kib pkg_dir dist_entry
  local name=$1 budget=$2 pkg=$3 js=$4 total=0 n f
  if [ ! -f "$js" ] || [ ! -f "$pkg/edgebus_wasm_bg.wasm" ]; then
    echo "size.sh: $name: $js or $pkg/ missing (run web/build.sh)" >&2
    over=1
    return
  fi
  echo "== $name ($js)"
  for f in "$pkg/edgebus_wasm_bg.wasm" "$pkg/edgebus_wasm.js" $(imports "$js"); do
    n=$(gz "$f")
    total=$((total + n))
    printf '  %-30s %8d bytes gzipped (%d raw)\n' "$f" "$n" "$(wc -c <"$f")"
  done
  printf '  %-30s %8d bytes gzipped (%d KiB; budget %d KiB)\n' "total" "$total" "$(((total + 1023) / 1024))" "$budget"
  if [ "$total" -gt $((budget * 1024)) ]; then
    echo "size.sh: $name is over its budget: $(((total + 1023) / 1024)) KiB > $budget KiB" >&2
    over=1
  fi
}

entry "edgebus" 150 pkg dist/index.js
if [ -f dist/core.js ] || [ -d pkg-core ]; then
  entry "edgebus/core" 60 pkg-core dist/core.js
else
  echo "== edgebus/core: not built (no dist/core.js, pkg-core/)" >&2
  over=1
fi
if [ "$over" -ne 0 ] && [ "${EDGEBUS_SIZE_REPORT_ONLY:-0}" != "1" ]; then
  exit 1
fi
