#!/usr/bin/env bash
# `npm start`: build the server and run it with the client port, WebSocket and monitoring on.
# Extra arguments go to edgebus-server (e.g. `npm start -- -DV`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "start: cargo not found (install Rust with rustup)" >&2; exit 1; }
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build --release -p edgebus-server
store=${EDGEBUS_STORE_DIR:-${TMPDIR:-/tmp}/edgebus-store}
mkdir -p "$store"
echo "edgebus: nats://127.0.0.1:4222  ws://127.0.0.1:8080  monitoring http://127.0.0.1:8222"
exec target/release/edgebus-server --addr 127.0.0.1 --port 4222 --ws_port 8080 --http_port 8222 \
  --jetstream --store_dir "$store" "$@"
