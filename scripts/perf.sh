#!/usr/bin/env bash
# The performance harness (docs/performance.md): builds the Worker and the mock, runs the core's
# criterion benchmarks, then measures the Worker in workerd against direct calls to the mock on
# 127.0.0.1. Prints a table and the budgets; writes target/perf/results.json (and the benches'
# figures to target/perf/criterion.txt). `--quick` runs fewer requests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH" WRANGLER_SEND_METRICS=false
bash scripts/build-wasm.sh
cargo build -q --release -p mock-provider
mkdir -p target/perf
if [[ " $* " != *" --quick "* ]]; then
  cargo bench -q --bench route --bench gateway --bench translate 2>/dev/null | grep -E 'time:' -B1 | tee target/perf/criterion.txt
fi
MOCK_PROVIDER_BIN="${CARGO_TARGET_DIR:-target}/release/mock-provider" node perf/harness.mjs "$@"
