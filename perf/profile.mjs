// CPU profile of the Worker inside workerd: attaches to the V8 inspector, samples while a fixed
// number of requests of the CPU case (8 KB prompt, 100 routes, 2,000 keywords) pass through, and
// prints the functions with the most self time (JavaScript and wasm, by name).
// Usage: node perf/profile.mjs [--small] [--stream EVENTS] [--requests N] [--out target/perf/profile.cpuprofile]
// The .cpuprofile file opens in Chrome DevTools (Performance tab) or speedscope.
// Build with the wasm's function names kept, or wasm frames have no names:
//   KEEP_WASM_NAMES=1 bash scripts/build-wasm.sh
import http from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startMock, startWorker, testRules, GATEWAY_KEY, ROOT } from "../tests/e2e/harness.mjs";
import { bigRules, prose8k } from "./workload.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const REQUESTS = Math.min(Number(arg("--requests", 2000)), 20000);
const OUT = arg("--out", path.join(ROOT, "target/perf/profile.cpuprofile"));
const INSPECTOR_PORT = 9229 + Math.floor(Math.random() * 500);
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function post(url, data) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
      headers: { "content-type": "application/json", "content-length": data.length, authorization: `Bearer ${GATEWAY_KEY}` } },
    (res) => res.resume().on("end", () => resolve(res.statusCode)));
    req.setTimeout(30_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(data);
  });
}

/** One DevTools protocol session on the Worker's isolate. */
async function inspect(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.title?.includes("taskrouter") || t.id?.includes("taskrouter")) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((res, rej) => ws.once("open", res).once("error", rej));
  let id = 0;
  const waiting = new Map();
  ws.on("message", (m) => {
    const msg = JSON.parse(m);
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  });
  const send = (method, params = {}) => new Promise((res) => {
    waiting.set(++id, res);
    ws.send(JSON.stringify({ id, method, params }));
  });
  return { send, close: () => ws.close() };
}

const mock = await startMock({ apiKey: null });
// `--stream N`: streamed answers of N events, one a millisecond.
const STREAM = Number(arg("--stream", 0));
// `--cold`: the isolate's first chat request, with the rules of the harness's cold start.
const COLD = process.argv.includes("--cold");
// The requests profiled: one when cold.
const PROFILED = COLD ? 1 : REQUESTS;
const rules = COLD ? testRules(mock.url) : bigRules(mock.url);
if (STREAM) rules.models.fast.model = `mock-fast+chunks=${STREAM}+chunk_delay=1`;
const worker = await startWorker({ rules, secrets: { MOCK_API_KEY: "unused" }, recordAnalytics: false, quiet: true, inspectorPort: INSPECTOR_PORT,
  // With the inspector attached every console.log is sent to it, which costs more than the request.
  vars: { REQUEST_LOG: "off" } });
const content = process.argv.includes("--small") ? "hello there" : prose8k();
const payload = Buffer.from(JSON.stringify({ model: "auto", messages: [{ role: "user", content }], metadata: { tier: "tier3" }, ...(STREAM ? { stream: true } : {}) }));
// `--cold`: no warm-up; the one request profiled reads and compiles the rules, reads the task
// model and meets every function it runs for the first time.
if (!COLD) for (let i = 0; i < 300; i++) await post(`${worker.url}/v1/chat/completions`, payload);

const session = await inspect(INSPECTOR_PORT);
await session.send("Profiler.enable");
await session.send("Profiler.setSamplingInterval", { interval: 50 });
await session.send("Profiler.start");
for (let i = 0; i < PROFILED; i++) {
  const status = await post(`${worker.url}/v1/chat/completions`, payload);
  if (status !== 200) throw new Error(`HTTP ${status}`);
}
const { result } = await session.send("Profiler.stop");
session.close();
await worker.stop();
await mock.stop();
agent.destroy();

const profile = result.profile;
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(profile));

// Self time per function: each sample counts the time to the next one for its leaf node.
const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
profile.samples.forEach((nodeId, i) => {
  const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  const f = byNode.get(nodeId).callFrame;
  const name = `${f.functionName || "(anonymous)"} ${f.url ? path.basename(f.url) : ""}`.trim();
  if (name === "(idle)") return;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
});
if (COLD) {
  // Inclusive time per function too: which step of the first request holds the time.
  const children = new Map(profile.nodes.map((n) => [n.id, n.children ?? []]));
  const own = new Map();
  profile.samples.forEach((nodeId, i) => own.set(nodeId, (own.get(nodeId) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000));
  const inclusive = new Map();
  const walk = (id, onPath) => {
    const f = byNode.get(id).callFrame;
    const name = `${f.functionName || "(anonymous)"} ${f.url ? path.basename(f.url) : ""}`.trim();
    let sum = own.get(id) ?? 0;
    for (const c of children.get(id)) sum += walk(c, new Set([...onPath, name]));
    // A function counted once per path (recursion would count it twice).
    if (!onPath.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    return sum;
  };
  walk(profile.nodes[0].id, new Set());
  console.log("first request, inclusive ms:");
  for (const [name, ms] of [...inclusive].filter(([n]) => !n.startsWith("(root)")).sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${ms.toFixed(2).padStart(8)} ms  ${name.slice(0, 120)}`);
  }
}
console.log(`${PROFILED} requests; busy ${total.toFixed(1)} ms in the isolate = ${(total / PROFILED).toFixed(3)} ms per request`);
for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`${(ms / PROFILED * 1000).toFixed(1).padStart(8)} µs/req  ${(100 * ms / total).toFixed(1).padStart(5)}%  ${name.slice(0, 120)}`);
}
console.log(`profile: ${OUT}`);
