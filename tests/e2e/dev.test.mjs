// The README's first command, as a newcomer runs it: scripts/dev.sh starts the mock and
// `wrangler dev` on local KV with the default rules, and the curl line it prints works.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { ROOT } from "./harness.mjs";

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

test("a second start rebuilds nothing: setup leaves the toolchain's environment alone and the build is fresh", { timeout: 300_000 }, () => {
  const env = path.join(ROOT, ".toolchain", "env");
  const wasm = path.join(ROOT, "build", "index_bg.wasm");
  const before = [statSync(env).mtimeMs, statSync(wasm).mtimeMs];
  execFileSync("bash", ["scripts/setup.sh"], { cwd: ROOT, stdio: "ignore" });
  const out = execFileSync("bash", ["scripts/build-wasm.sh"], { cwd: ROOT, encoding: "utf8" });
  assert.match(out, /is up to date/);
  assert.deepEqual([statSync(env).mtimeMs, statSync(wasm).mtimeMs], before);
});

test("scripts/dev.sh serves the default rules through wrangler dev, keyless, and prints a working curl line", { timeout: 600_000 }, async () => {
  const [port, mockPort] = [await freePort(), await freePort()];
  const persist = mkdtempSync(path.join(tmpdir(), "taskrouter-dev-"));
  const child = spawn("bash", ["scripts/dev.sh"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORT: String(port), MOCK_PORT: String(mockPort), PERSIST_DIR: persist },
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  try {
    const line = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dev.sh printed no curl line:\n${out}`)), 540_000);
      const check = () => {
        const m = out.match(/^curl -s -D - http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions .*$/m);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      };
      child.stdout.on("data", check);
      child.once("exit", (code) => reject(new Error(`dev.sh exited with ${code}:\n${out}`)));
    });
    // Run the printed line exactly as a newcomer would paste it.
    const result = await new Promise((resolve) => {
      const sh = spawn("bash", ["-c", line], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      sh.stdout.on("data", (d) => (text += d));
      sh.on("exit", () => resolve(text));
    });
    assert.match(result, /^HTTP\/1\.1 200/);
    assert.match(result, /x-router-task: code_generation/i);
    assert.match(result, /x-router-rule: code-and-writing/i);
    assert.match(result, /x-router-model: mock-strong/i);
    const body = JSON.parse(result.slice(result.indexOf("{")));
    assert.equal(body.object, "chat.completion");
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    // The README's other examples: the Responses API and embeddings, with the dev key.
    const post = (path, payload) => fetch(`http://127.0.0.1:${port}${path}`, {
      method: "POST",
      headers: { authorization: "Bearer tr-dev-local-key", "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
    const resp = await post("/v1/responses", { model: "auto", input: "Translate to French: good morning" });
    assert.equal(resp.status, 200);
    const r = await resp.json();
    assert.equal(r.object, "response");
    assert.equal(r.output[0].type, "message");
    const emb = await post("/v1/embeddings", { model: "embed", input: ["first text", "second text"] });
    assert.equal(emb.status, 200);
    assert.equal((await emb.json()).data[1].embedding.length, 8);
    // The operator console: the address and admin key it printed open the page and its API.
    const printed = out.match(/^\s+(http:\/\/127\.0\.0\.1:\d+\/admin)\s+admin key: (\S+)/m);
    assert.ok(printed, `dev.sh printed no console address:\n${out}`);
    const page = await fetch(printed[1]);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    assert.match(page.headers.get("content-security-policy"), /^default-src 'none'/);
    const live = await fetch(`http://127.0.0.1:${port}/admin/rules`, { headers: { authorization: `Bearer ${printed[2]}` } });
    assert.equal(live.status, 200, await live.clone().text());
    assert.ok((await live.json()).rules.routes.length > 0);
  } finally {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    rmSync(persist, { recursive: true, force: true });
  }
  // Everything it started is gone: the ports are free again.
  for (const p of [port, mockPort]) {
    const r = await fetch(`http://127.0.0.1:${p}/healthz`).then(() => "open", () => "closed");
    assert.equal(r, "closed", `port ${p} still answers after dev.sh stopped`);
  }
});
