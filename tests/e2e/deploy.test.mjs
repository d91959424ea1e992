// The closest thing to a deploy we can do here: `wrangler deploy --dry-run` bundles the Worker
// with its bindings; the bundle must hold the wasm and stay inside the size budget.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { ROOT } from "./harness.mjs";

const run = promisify(execFile);

test("wrangler deploy --dry-run bundles the Worker with its KV, Analytics Engine, Workers AI, Durable Object and static assets bindings", async () => {
  const outdir = mkdtempSync(path.join(tmpdir(), "taskrouter-dry-run-"));
  try {
    const { stdout } = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    assert.match(stdout, /env\.RULES \(.*\)\s+KV Namespace/);
    assert.match(stdout, /env\.ANALYTICS \(taskrouter_requests\)\s+Analytics Engine Dataset/);
    assert.match(stdout, /env\.LIMITS \(KeyLimiter\)\s+Durable Object/);
    assert.match(stdout, /env\.HEALTH \(TargetHealth\)\s+Durable Object/);
    assert.match(stdout, /env\.AI\s+AI/);
    assert.match(stdout, /env\.ASSETS\s+Assets/);
    assert.match(stdout, /--dry-run: exiting now/);
    const files = readdirSync(outdir);
    assert.ok(files.includes("index.js"), files.join(", "));
    const wasm = files.find((f) => f.endsWith(".wasm"));
    assert.ok(wasm, `a wasm module in ${files.join(", ")}`);
    const gz = gzipSync(readFileSync(path.join(outdir, wasm)), { level: 9 }).length;
    assert.ok(gz < 1024 * 1024, `wasm is ${gz} bytes gzipped; the budget is 1 MiB`);
    // The task model is a static asset (wrangler.toml [assets]), not part of the wasm.
    const model = readFileSync(path.join(ROOT, "models", "tasks-v2.trcls")).subarray(0, 256);
    assert.ok(!readFileSync(path.join(outdir, wasm)).includes(model), "the task model is compiled into the wasm");
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
