#!/usr/bin/env bash
# Builds the npm package: the wasm module (cargo + wasm-bindgen --target web, then binaryen's
# wasm-opt) into pkg/, the same without JetStream into pkg-core/ (the `edgebus/core` entry), then
# the TypeScript into dist/, then minifies the JavaScript.
# `bash size.sh` prints what a page loads, gzipped.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
# The `wasm` profile (root Cargo.toml): size-optimised, fat LTO, stripped. wasm-bindgen warns
# that stripping removes the target_features section it reads; the page tests pass on this
# build, and the names section it removes is a quarter of the gzipped bundle.
target=$(cd .. && cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

# wasm-opt from the npm package `binaryen` (a devDependency; version 132 handles the externref
# table that wasm-bindgen emits, unlike Debian's binaryen 108: see shared/toolchain.md pitfall 1,
# which is why only this one is used). -Os without binaryen's own inlining: LLVM has inlined
# already, and more inlining makes the module smaller raw but larger gzipped (-Oz alone: +6%).
# The features are the ones rustc enables for wasm32-unknown-unknown.
wasm_opt=node_modules/.bin/wasm-opt

# One wasm module: cargo (extra cargo arguments: "$@"), wasm-bindgen into `$1`, wasm-opt.
module() {
  local out=$1
  shift
  cargo build --profile wasm --target wasm32-unknown-unknown -p edgebus-wasm "$@"
  rm -rf "$out"
  wasm-bindgen --target web --out-name edgebus_wasm --out-dir "$out" --remove-name-section --remove-producers-section \
    "$target/wasm32-unknown-unknown/wasm/edgebus_wasm.wasm"
  if [ -x "$wasm_opt" ] && [ "$("$wasm_opt" --version | awk '{print $3}')" -ge 116 ] 2>/dev/null; then
    "$wasm_opt" -Os --one-caller-inline-max-function-size 0 --flexible-inline-max-function-size 0 \
      --zero-filled-memory --strip-target-features \
      --enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-multivalue \
      "$out/edgebus_wasm_bg.wasm" -o "$out/edgebus_wasm_bg.wasm.opt"
    mv "$out/edgebus_wasm_bg.wasm.opt" "$out/edgebus_wasm_bg.wasm"
  else
    echo "build.sh: binaryen's wasm-opt (>= 116) not in web/node_modules (npm ci in web/): the wasm module is not post-optimised" >&2
  fi
}

# `edgebus`: everything. `edgebus/core`: core NATS and the link, without the `jetstream`
# feature (no engine, IndexedDB store, KV or object store).
module pkg
module pkg-core --no-default-features

npx tsc -p tsconfig.json

# Minify the wasm-bindgen glue and the package's JavaScript (terser, a devDependency): names
# that other modules see (exports, the wasm imports object's keys) are kept.
terser=node_modules/.bin/terser
if [ -x "$terser" ]; then
  for f in pkg/edgebus_wasm.js pkg-core/edgebus_wasm.js dist/*.js; do
    "$terser" "$f" --module --compress --mangle --output "$f.min"
    mv "$f.min" "$f"
  done
else
  echo "build.sh: terser not in web/node_modules (npm ci in web/): the JavaScript is not minified" >&2
fi
