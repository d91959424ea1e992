import http from "node:http";
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import { startMock, startWorker, GATEWAY_KEY } from "./tests/e2e/harness.mjs";
import { bigRules, prose8k } from "./perf/workload.mjs";
const agent = new http.Agent({ keepAlive: true });
function req(method, url, body) { return new Promise((res, rej) => { const u = new URL(url); const d = body ? Buffer.from(body) : null;
  const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, agent, headers: { authorization: `Bearer ${GATEWAY_KEY}`, ...(d ? { "content-type": "application/json", "content-length": d.length } : {}) } }, (x) => { x.resume(); x.on("end", () => res(x.statusCode)); }); r.on("error", rej); r.end(d); }); }
const mock = await startMock({ apiKey: null });
const w = await startWorker({ rules: bigRules(mock.url), secrets: { MOCK_API_KEY: "unused" }, recordAnalytics: false, quiet: true });
const rows = execFileSync("ps", ["-eo", "pid,ppid,comm"], { encoding: "utf8" }).trim().split("\n").map(l => l.trim().split(/\s+/));
const pid = rows.filter(r => r[2] === "workerd" && +r[1] === process.pid).at(-1)[0];
const cpu = () => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (+f[11] + +f[12]) * 10; };
const small = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "hello there" }], metadata: { tier: "tier3" } });
const cases = { healthz: () => req("GET", `${w.url}/healthz`), models: () => req("GET", `${w.url}/v1/models`), explain: () => req("POST", `${w.url}/v1/router/explain`, small), chat: () => req("POST", `${w.url}/v1/chat/completions`, small) };
for (let round = 0; round < 2; round++) for (const [k, f] of Object.entries(cases)) {
  for (let i = 0; i < 300; i++) { const s = await f(); if (s !== 200) throw new Error(k + " " + s); }
  const c0 = cpu(); for (let i = 0; i < 2000; i++) await f();
  console.log(k, ((cpu() - c0) / 2000).toFixed(3));
}
await w.stop(); await mock.stop();
