#!/usr/bin/env bash
# Build the Worker (build/index.js + build/index_bg.wasm) with worker-build, using the toolchain
# route scripts/setup.sh recorded for this machine. wrangler runs this as its [build] command.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=.toolchain/env
if [ ! -f "$env_file" ]; then
  echo "build-wasm: $env_file is missing; run scripts/setup.sh first" >&2
  exit 1
fi
# shellcheck source=/dev/null
. "$env_file"
exec worker-build --release
