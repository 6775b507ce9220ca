#!/usr/bin/env bash
# Builds the npm package: the wasm module (cargo + wasm-bindgen --target web, no wasm-opt
# after bindgen: see shared/toolchain.md pitfall 1) into pkg/, then the TypeScript into dist/.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
# The `wasm` profile (root Cargo.toml): size-optimised, fat LTO, stripped. wasm-bindgen warns
# that stripping removes the target_features section it reads; the page tests pass on this
# build, and the names section it removes is a quarter of the gzipped bundle.
cargo build --profile wasm --target wasm32-unknown-unknown -p edgebus-wasm
target=$(cd .. && cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
rm -rf pkg
wasm-bindgen --target web --out-name edgebus_wasm --out-dir pkg "$target/wasm32-unknown-unknown/wasm/edgebus_wasm.wasm"
npx tsc -p tsconfig.json
