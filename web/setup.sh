#!/usr/bin/env bash
# What web/build.sh needs, installed idempotently (each step is skipped when already done):
# the wasm32 target, wasm-bindgen-cli at the version Cargo.lock resolved, and web/'s npm
# packages (TypeScript; binaryen's wasm-opt and terser, which shrink the bundle). Used by
# tests/setup.sh and server-ws/start.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[web/setup] %s\n' "$*" >&2; }
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
WB_VERSION=$(awk '$0=="name = \"wasm-bindgen\""{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  # Without --locked: a locked dependency of the CLI is missing from this registry.
  # --debug: an unoptimised CLI compiles in a fraction of the time and still processes our
  # module in seconds, which keeps a cold CI run well inside its budget.
  log "cargo install wasm-bindgen-cli --version $WB_VERSION --debug (a few minutes, once)"
  start=$(date +%s)
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force --debug
  log "wasm-bindgen-cli install took $(( $(date +%s) - start ))s"
fi
if [ ! -x web/node_modules/.bin/tsc ] || [ ! -x web/node_modules/.bin/wasm-opt ] || [ ! -x web/node_modules/.bin/terser ]; then
  log "npm ci in web"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
