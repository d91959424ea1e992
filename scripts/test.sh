#!/usr/bin/env bash
# Run every test: formatting and lints, the core's native unit and integration tests, then the
# wasm build and the end-to-end tests (the built Worker in workerd, the mock provider, over HTTP
# on 127.0.0.1), including `wrangler deploy --dry-run` and the local dev command itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings
if [ "$(cat .toolchain/route)" = rustup ]; then
  # The Workers shell compiles only for wasm32; lint it too where that target is at hand.
  cargo clippy -q --lib --target wasm32-unknown-unknown -- -D warnings
fi

step "native tests"
cargo test -q --workspace

step "wasm build"
bash scripts/build-wasm.sh
cargo build -q -p mock-provider -p taskrouter-cli

step "end-to-end tests"
node --test --test-concurrency=1 tests/e2e/
