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

# What runs now, so that a long step is never a silent one.
step() { printf '\n[main] %s\n' "$*"; }
started=$SECONDS

step "setup: installing whatever is missing (pkg-scripts/setup.sh)"
bash pkg-scripts/setup.sh
step "building the npm package into pkg/ (pkg-scripts/build.mjs)"
node pkg-scripts/build.mjs
ln -sfn ../pkg node_modules/edgebus

step "demonstration (examples/demo.mjs)"
node examples/demo.mjs
step "Node benchmark, $size size (benches/node/run.mjs): one line per scenario while it runs, then the table"
node benches/node/run.mjs --json bench-results/node.json "${node_args[@]}"

if ((browser_bench)); then
  step "browser benchmark page, $size size, in headless Chromium (bench-web/run.mjs)"
  node bench-web/run.mjs --size "$size"
  page=browser; [[ $size == small ]] && page=browser-small
  step "done in $((SECONDS - started)) s: package in pkg/; tables in bench-results/node.json and bench-results/$page.json (screenshot bench-results/$page.png)"
elif ((serve)); then
  step "building and serving the demo site and the benchmark page (pkg-scripts/web.mjs serve; Ctrl-C stops)"
  node pkg-scripts/web.mjs serve --port "$port"
else
  step "building the demo site and the benchmark page into dist/ (pkg-scripts/web.mjs build)"
  node pkg-scripts/web.mjs build >/dev/null
  step "done in $((SECONDS - started)) s: package in pkg/; Node benchmark table in bench-results/node.json; pages in dist/www and dist/bench-web (serve them: node pkg-scripts/web.mjs serve)"
fi
