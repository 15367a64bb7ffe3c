#!/usr/bin/env bash
# The main job: installs what is missing, builds the npm package, shows edgebus at work on a small
# demonstration, then runs the Node benchmark against EventEmitter3, mitt and node:events and prints
# its table (also written to bench-results/node.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash pkg-scripts/setup.sh
node pkg-scripts/build.mjs
ln -sfn ../pkg node_modules/edgebus
node examples/demo.mjs
node benches/node/run.mjs --json bench-results/node.json "$@"
