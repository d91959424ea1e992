#!/usr/bin/env bash
# Build the Worker (build/index.js + build/index_bg.wasm) with worker-build, using the toolchain
# route scripts/setup.sh recorded for this machine. wrangler runs this as its [build] command.
# Skips the build when the output is newer than every input: the sources, the bundled task model,
# the manifests, this script and the toolchain's environment (FORCE_BUILD=1 builds anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=.toolchain/env
if [ ! -f "$env_file" ]; then
  echo "build-wasm: $env_file is missing; run scripts/setup.sh first" >&2
  exit 1
fi
out=build/index_bg.wasm
if [ "${FORCE_BUILD:-0}" != 1 ] && [ -f "$out" ] && [ -f build/index.js ] \
  && [ -z "$(find src models Cargo.toml Cargo.lock scripts/build-wasm.sh "$env_file" -newer "$out" -print -quit)" ]; then
  echo "build-wasm: $out is up to date"
  exit 0
fi
# shellcheck source=/dev/null
. "$env_file"
worker-build --release
