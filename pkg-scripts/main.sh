#!/usr/bin/env bash
# The main job: installs what is missing, builds the npm package, shows edgebus at work on a small
# demonstration, then runs the Node benchmark against EventEmitter3, mitt and node:events and prints
# its table (also written to bench-results/node.json); then builds the demo site and the benchmark
# page and serves them on 127.0.0.1, printing the address.
#
#   bash pkg-scripts/main.sh [--browser-bench] [--no-serve] [--port N] [Node benchmark options]
#
#   --browser-bench  instead of serving, run the benchmark page in headless Chromium and print its
#                    table (bench-results/browser.json and .png; with --quick, the small size)
#   --no-serve       stop after the Node benchmark and the page build
#   --port N         port of the pages (default 5173)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash pkg-scripts/setup.sh
node pkg-scripts/build.mjs
ln -sfn ../pkg node_modules/edgebus

browser_bench=0 serve=1 port=5173 size=full node_args=()
while (($#)); do
  case "$1" in
    --browser-bench) browser_bench=1 ;;
    --no-serve) serve=0 ;;
    --port) port="$2"; shift ;;
    *) [[ "$1" == --quick ]] && size=small; node_args+=("$1") ;;
  esac
  shift
done

node examples/demo.mjs
node benches/node/run.mjs --json bench-results/node.json "${node_args[@]}"

if ((browser_bench)); then
  node bench-web/run.mjs --size "$size"
elif ((serve)); then
  node pkg-scripts/web.mjs serve --port "$port"
else
  node pkg-scripts/web.mjs build
fi
