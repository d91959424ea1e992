#!/usr/bin/env bash
# Start taskrouter locally: the mock provider, local KV seeded with rules/default.json and a dev
# gateway key, and `wrangler dev` on 127.0.0.1. No provider key needed. Ctrl-C stops everything.
#
#   PORT (8787)       the router's port
#   MOCK_PORT (8788)  the mock provider's port (the default rules point at it)
#   RULES_FILE        rules to seed instead of rules/default.json
#   PERSIST_DIR       where wrangler keeps local KV (.wrangler/state)
#   ADMIN_KEY         the admin key of the local admin API and console (tr-dev-admin-key)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PORT=${PORT:-8787}
MOCK_PORT=${MOCK_PORT:-8788}
RULES_FILE=${RULES_FILE:-rules/default.json}
PERSIST_DIR=${PERSIST_DIR:-.wrangler/state}
DEV_KEY=tr-dev-local-key
MOCK_KEY=mock-dev-key
# The admin API and the operator console (/admin) are on with a local admin key: a var here, a
# Worker secret when deployed (`npx wrangler secret put ADMIN_KEY`).
ADMIN_KEY=${ADMIN_KEY:-tr-dev-admin-key}
export WRANGLER_SEND_METRICS=false
export PATH="$HOME/.cargo/bin:$PATH"

cargo build -q -p mock-provider
mock_bin="${CARGO_TARGET_DIR:-target}/debug/mock-provider"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$mock_bin" --port "$MOCK_PORT" --api-key "$MOCK_KEY" &
pids+=($!)

# Seed local KV: the rules (pointed at this mock port) and the dev gateway key, stored hashed.
rules_tmp=$(mktemp)
sed "s#http://127.0.0.1:8788/v1#http://127.0.0.1:$MOCK_PORT/v1#" "$RULES_FILE" > "$rules_tmp"
kv_put() { npx wrangler kv key put --local --persist-to "$PERSIST_DIR" --binding RULES "$@" >/dev/null; }
kv_put rules --path "$rules_tmp"
rm -f "$rules_tmp"
key_hash=$(printf '%s' "$DEV_KEY" | sha256sum | cut -d' ' -f1)
kv_put "gateway-key:$key_hash" '{"id": "dev", "name": "local development key"}'

# --local: no remote bindings, so no Cloudflare account is needed (the AI binding then is absent
# and `workers_ai` targets fail as unbound; see docs/providers.md#workers-ai).
npx wrangler dev --local --ip 127.0.0.1 --port "$PORT" --persist-to "$PERSIST_DIR" \
  --var "MOCK_API_KEY:$MOCK_KEY" --var "ADMIN_KEY:$ADMIN_KEY" --var CACHE_TTL_SECONDS:5 --log-level warn &
pids+=($!)

for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "dev: wrangler dev exited" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

cat <<MSG

taskrouter is running on http://127.0.0.1:$PORT (mock provider on 127.0.0.1:$MOCK_PORT). Try:

curl -s -D - http://127.0.0.1:$PORT/v1/chat/completions -H 'authorization: Bearer $DEV_KEY' -H 'content-type: application/json' -d '{"model": "auto", "messages": [{"role": "user", "content": "Write a Python function that checks whether a string is a palindrome."}]}'

The x-router-* headers say what happened: task code_generation (a regex of the rules), route
code-and-writing, model mock-strong. A prompt no rule recognises is labelled by the built-in task
model ("tl;dr of the meeting notes below ..." goes to the fast model as summarisation), and one that
is none of the tasks ("Hello!") falls to the default. Ask without calling a model:
  curl -s http://127.0.0.1:$PORT/v1/router/explain -H 'authorization: Bearer $DEV_KEY' -d '{"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}'

The operator console (rules, playground, traffic, keys; docs/console.md):
  http://127.0.0.1:$PORT/admin    admin key: $ADMIN_KEY    gateway key: $DEV_KEY

Change the routing live in the console, or edit $RULES_FILE, then
  npx wrangler kv key put --local --persist-to $PERSIST_DIR --binding RULES rules --path $RULES_FILE
Ctrl-C stops the router and the mock.
MSG
wait "${pids[1]}"
