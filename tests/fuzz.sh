#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds each (default 60), each in its own
# process so a stack overflow or abort is reported against its target, and prints the
# executions and crashes per target. Failing inputs land in fuzz/crashes/ (replay them with
# `edgebus-fuzz replay <target> <file>`, then move them to fuzz/regressions/<target>/).
#   tests/fuzz.sh [seconds per target] [seed]
set -u
cd "$(dirname "$0")/.."
secs="${1:-60}"
seed="${2:-$(date +%s)}"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release -q -p edgebus-fuzz || exit 2
bin=target/release/edgebus-fuzz
status=0
for t in proto_split jsapi config ws_frame filestore_recovery; do
  if ! "$bin" "$t" --seconds "$secs" --seed "$seed" --crash-dir fuzz/crashes; then
    rc=$?
    [ "$rc" -ne 1 ] && echo "$t: the fuzzer process died (exit $rc): a stack overflow or abort; seed $seed"
    status=1
  fi
done
exit $status
