#!/usr/bin/env bash
# Deterministic simulation of the whole JetStream engine on the simulated disk
# (server-ws/src/filestore/sim_workload.rs): runs N seeds, or T minutes, and prints the seeds
# run, the simulated crashes and the invariant violations (each with its seed and step).
#   tests/sim.sh [--seeds N] [--minutes T] [--mode always|interval|broken] [--first SEED]
#                [--no-removes]
# Replay one seed with its trace:
#   EDGEBUS_SIM_SEED=42 EDGEBUS_SIM_TRACE=1 tests/sim.sh --mode always
# Exit status: 0 when no invariant was violated, 1 otherwise, 2 if the build failed.
set -u
cd "$(dirname "$0")/.."
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) export EDGEBUS_SIM_SEEDS="$2"; shift 2 ;;
    --minutes) export EDGEBUS_SIM_MINUTES="$2"; shift 2 ;;
    --mode) export EDGEBUS_SIM_MODE="$2"; shift 2 ;;
    --first) export EDGEBUS_SIM_FIRST="$2"; shift 2 ;;
    --no-removes) export EDGEBUS_SIM_NO_REMOVES=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test -q -p edgebus-server --lib --no-run 2>/dev/null || { echo "build failed" >&2; exit 2; }
out=$(mktemp)
cargo test -q -p edgebus-server --lib filestore::sim_workload_tests::soak -- --ignored --exact --nocapture >"$out" 2>&1
rc=$?
grep -E '^(VIOLATION|step |[A-Za-z]+: [0-9]+ seeds run)' "$out"
if [ $rc -ne 0 ] && ! grep -q 'seeds run' "$out"; then
  tail -30 "$out"
fi
rm -f "$out"
[ $rc -eq 0 ] && exit 0 || exit 1
