#!/usr/bin/env bash
# Make this machine ready to build, run and test taskrouter. Safe to re-run: it installs only what
# is missing, so a second run takes seconds.
#
# The wasm toolchain route is chosen here:
#   rustup   where `rustup target add wasm32-unknown-unknown` works (an ordinary laptop);
#   offline  where it does not: Debian's rustc-web + rust-web-src + lld, std built from source with
#            -Zbuild-std (see shared/docs/toolchain.md). Force one with TASKROUTER_WASM_ROUTE.
# Either way wasm-bindgen-cli (the exact version in Cargo.lock) and worker-build come from
# crates.io, and esbuild/binaryen/wrangler from npm, so the build downloads nothing else.
# The route's variables go to .toolchain/env, read by scripts/build-wasm.sh only: they must never
# reach host builds (cargo test, the mock, benches), where build-std would break them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

WORKER_BUILD_VERSION=0.8.7
log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1
  fi
}

apt_updated=no
apt_install() {
  command -v apt-get >/dev/null || { log "apt-get not found; install these yourself: $*"; return 1; }
  if [ "$apt_updated" = no ]; then as_root apt-get update -qq; apt_updated=yes; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. Node.js and npm (wrangler, Miniflare, esbuild, binaryen).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi

# 2. A host Rust toolchain (cargo test, the mock provider, cargo install).
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  log "no cargo found: installing Debian's rustc-web/cargo-web"
  apt_install rustc-web cargo-web
fi

# 3. The wasm route.
route=${TASKROUTER_WASM_ROUTE:-}
if [ -z "$route" ]; then
  # A closed network may make rustup hang rather than fail: bound it.
  if command -v rustup >/dev/null && timeout 180 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    route=rustup
  else
    route=offline
  fi
fi
case "$route" in
  rustup)
    rustup target add wasm32-unknown-unknown >/dev/null
    ;;
  offline)
    if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || ! command -v wasm-ld >/dev/null \
      || ! /usr/bin/rustc --version 2>/dev/null | grep -q .; then
      log "installing Debian's rustc-web, cargo-web, rust-web-src and lld (offline wasm route)"
      apt_install rustc-web cargo-web rust-web-src lld
    fi
    # worker-build refuses to start unless the target's libdir exists.
    mkdir -p "$(/usr/bin/rustc --target wasm32-unknown-unknown --print target-libdir)"
    ;;
  *) log "TASKROUTER_WASM_ROUTE must be rustup or offline, not $route"; exit 2 ;;
esac

# 4. wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock, and worker-build.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wbg_version" ]; then log "cannot find wasm-bindgen in Cargo.lock"; exit 1; fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  log "installing wasm-bindgen-cli $wbg_version (a few minutes, once)"
  # Not --locked: its lockfile pins a crate version the registry no longer serves.
  cargo install -q wasm-bindgen-cli --version "$wbg_version"
fi
if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION (several minutes, once)"
  cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# 5. npm packages, pinned by package-lock.json.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 6. Debian's Chromium, which the console's browser tests drive (tests/e2e/console.test.mjs, with
# puppeteer-core: no browser of its own is downloaded). Not fatal where it cannot be installed.
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium (the console's browser tests)"
  apt_install chromium || log "chromium is missing: tests/e2e/console.test.mjs cannot run without /usr/bin/chromium"
fi

# 7. The environment for the wasm build only.
mkdir -p .toolchain
{
  echo "# Written by scripts/setup.sh ($route route). Read by scripts/build-wasm.sh only."
  echo "export PATH=\"$HOME/.cargo/bin:\$PATH\""
  echo "export WASM_BINDGEN_BIN=\"$(command -v wasm-bindgen)\""
  echo "export ESBUILD_BIN=\"$root/node_modules/.bin/esbuild\""
  echo "export WASM_OPT_BIN=\"$root/node_modules/.bin/wasm-opt\""
  if [ "$route" = offline ]; then
    echo "export PATH=\"/usr/bin:\$PATH\""
    echo "export RUSTC_BOOTSTRAP=1"
    echo "export CARGO_UNSTABLE_BUILD_STD=std,panic_abort"
    echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld"
    # Debian's compiler differs from rustup's: its own target dir avoids rebuilding on each switch.
    echo "export CARGO_TARGET_DIR=\"$root/target/wasm-offline\""
  fi
} > .toolchain/env.tmp
# Replace the file only when its content changes: the wasm build's freshness check reads its age.
if cmp -s .toolchain/env.tmp .toolchain/env; then rm .toolchain/env.tmp; else mv .toolchain/env.tmp .toolchain/env; fi
if [ "$(cat .toolchain/route 2>/dev/null)" != "$route" ]; then echo "$route" > .toolchain/route; fi
log "ready ($route route)"
