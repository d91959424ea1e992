// The closest thing to a deploy we can do here: `wrangler deploy --dry-run` bundles the Worker
// with its bindings; the bundle must hold the wasm and stay inside the size budget.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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
    const { stdout, stderr } = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
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
    // So is the index of the lexicon of task words it reads (models/lexicon.trlx).
    const lexicon = readFileSync(path.join(ROOT, "models", "lexicon.trlx"));
    const someBytes = lexicon.subarray(lexicon.length - 4096, lexicon.length - 2048);
    assert.ok(!readFileSync(path.join(outdir, wasm)).includes(someBytes), "the lexicon is compiled into the wasm");
    // The static assets uploaded with it: build/assets/ as scripts/build-wasm.sh (the [build]
    // command) assembles it, the task model, its lexicon and the operator console, copied as
    // they are.
    const assets = path.join(ROOT, "build", "assets");
    const read = `${stdout}\n${stderr}`.match(/Read (\d+) files? from the assets directory (\S+)/);
    assert.ok(read, `wrangler names the assets it uploads:\n${stdout}`);
    assert.equal(path.resolve(read[2]), assets);
    const uploaded = ["tasks-v2.trcls", "lexicon.trlx", "console/index.html", "console/console.css", "console/console.js"];
    assert.ok(Number(read[1]) >= uploaded.length, read[0]);
    for (const file of uploaded) {
      const source = file.startsWith("console/") ? path.join(ROOT, file) : path.join(ROOT, "models", file);
      assert.ok(existsSync(path.join(assets, file)), `${file} is not among the assets`);
      assert.ok(readFileSync(path.join(assets, file)).equals(readFileSync(source)), `${file} differs from its source`);
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
