#!/usr/bin/env bash
# Build the Worker (build/index.js + build/index_bg.wasm) with worker-build, using the toolchain
# route scripts/setup.sh recorded for this machine. wrangler runs this as its [build] command.
# It also assembles the Worker's static assets (wrangler.toml [assets]) in build/assets/: the task
# model (models/*.trcls, at the top), the index of the lexicon of task words it reads
# (models/lexicon.trlx, which `taskrouter lexicon` builds from data/tasks/lexicon/*.tsv) and
# the operator console (console/*, under console/); the Worker answers every path itself and
# fetches from there only what it chooses to serve.
# Skips the wasm build when the output is newer than every input: the sources, the task model,
# the manifests, this script and the toolchain's environment (FORCE_BUILD=1 builds anyway).
# The wasm's name section (function names, about 50 KB of the gzipped upload) is stripped;
# KEEP_WASM_NAMES=1 keeps it, for readable profiles (perf/profile.mjs) and stack traces.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=.toolchain/env
if [ ! -f "$env_file" ]; then
  echo "build-wasm: $env_file is missing; run scripts/setup.sh first" >&2
  exit 1
fi

# The static assets, on every run (a copy of a few files), before the wasm build and again after
# it (in case worker-build cleared build/): replaced only when something changed, so a Worker
# already running from them is not disturbed for nothing.
assemble_assets() {
  local assets=build/assets staged=build/.assets.tmp
  rm -rf "$staged"
  mkdir -p "$staged/console"
  cp models/*.trcls models/lexicon.trlx "$staged/"
  cp console/index.html console/console.css console/console.js "$staged/console/"
  if [ -d "$assets" ] && diff -rq "$staged" "$assets" >/dev/null; then
    rm -rf "$staged"
  else
    rm -rf "$assets"
    mv "$staged" "$assets"
    echo "build-wasm: static assets assembled in $assets"
  fi
}

assemble_assets

out=build/index_bg.wasm
names="${KEEP_WASM_NAMES:-0}"
if [ "${FORCE_BUILD:-0}" != 1 ] && [ -f "$out" ] && [ -f build/index.js ] \
  && [ "$(cat build/.wasm-names 2>/dev/null)" = "$names" ] \
  && [ -z "$(find src models Cargo.toml Cargo.lock scripts/build-wasm.sh "$env_file" -newer "$out" -print -quit)" ]; then
  echo "build-wasm: $out is up to date"
  exit 0
fi
# shellcheck source=/dev/null
. "$env_file"
worker-build --release
if [ "$names" != 1 ]; then
  "$WASM_OPT_BIN" "$out" --strip-debug -o "$out.stripped"
  mv "$out.stripped" "$out"
fi
echo "$names" > build/.wasm-names
assemble_assets
