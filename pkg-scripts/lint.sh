#!/usr/bin/env bash
# Lints edgebus and fails on any finding: Rust formatting (rustfmt), Clippy natively (every target)
# and for WebAssembly (every target that builds there: the library and its tests), and ESLint over
# all the JavaScript (eslint.config.mjs). Needs the npm dependencies (see setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib --tests -- -D warnings
node_modules/.bin/eslint .
