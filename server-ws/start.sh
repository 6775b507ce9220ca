#!/usr/bin/env bash
# `npm start`: build the server and run it with the client port, WebSocket and monitoring on,
# and serve the demo / inspector page (web/) on http://127.0.0.1:8000 while it runs. The web
# package is rebuilt only when it is missing or older than its sources.
# Extra arguments go to edgebus-server (e.g. `npm start -- -DV`). `npm start -- --cluster`
# first starts a 3-node nats-server cluster and runs edgebus as its leaf (server-ws/cluster.sh).
# EDGEBUS_WEB_PORT changes the demo's port; EDGEBUS_NO_WEB=1 skips the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "start: cargo not found (install Rust with rustup)" >&2; exit 1; }
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release -p edgebus-server
store=${EDGEBUS_STORE_DIR:-${TMPDIR:-/tmp}/edgebus-store}
mkdir -p "$store"
cluster=
if [ "${1:-}" = "--cluster" ]; then
  shift
  cluster=1
fi

web_port=${EDGEBUS_WEB_PORT:-8000}
web_pid=
if [ "${EDGEBUS_NO_WEB:-0}" != "1" ]; then
  wasm=web/pkg/edgebus_wasm_bg.wasm
  stale=
  if [ ! -f "$wasm" ] || [ ! -f web/dist/index.js ]; then
    stale=missing
  else
    stale=$(find core/src wasm/src wasm/Cargo.toml core/Cargo.toml Cargo.lock web/src web/build.sh \
      -newer "$wasm" -type f 2>/dev/null | head -n 1)
  fi
  if [ -n "$stale" ]; then
    echo "start: building the web package (web/build.sh)"
    if ! { bash web/setup.sh && bash web/build.sh; }; then
      echo "start: the web package did not build; starting the server without the demo page" >&2
    fi
  fi
  if [ -f "$wasm" ] && [ -f web/dist/index.js ]; then
    node web/serve.mjs --port "$web_port" &
    web_pid=$!
    trap 'kill "$web_pid" 2>/dev/null || true' EXIT
  fi
fi
if [ -n "$cluster" ]; then
  # shellcheck source=server-ws/cluster.sh
  source server-ws/cluster.sh
  set -- --config "$store/edge.conf" "$@"
fi

echo "edgebus: nats://127.0.0.1:4222  ws://127.0.0.1:8080  monitoring http://127.0.0.1:8222"
[ -n "$web_pid" ] && echo "edgebus: demo / inspector page http://127.0.0.1:${web_port}/"
target/release/edgebus-server --addr 127.0.0.1 --port 4222 --ws_port 8080 --http_port 8222 \
  --jetstream --store_dir "$store" "$@"
