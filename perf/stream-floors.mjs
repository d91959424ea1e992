// What it costs workerd to pass a streamed answer through a JavaScript Worker, by the way the
// Worker handles the stream, with no router in it: the harness's floor Worker (perf/meter.mjs,
// `meteredFloor`, its stream modes), workerd's process CPU per answer of 10 and 1,000 events (one
// a millisecond from the mock), three rounds each. Shows why the router's loop reads each chunk
// and writes it into a native IdentityTransformStream: any way of seeing the chunks in JavaScript
// costs a wake-up of the isolate per chunk, which native pass-through avoids.
// Usage: node perf/stream-floors.mjs [mode ...]   (modes: native loop loopnowait pump transform transform-parse)
import http from "node:http";
import { startMock } from "../tests/e2e/harness.mjs";
import { meteredFloor } from "./meter.mjs";
import { cpuMs, startWorkerd } from "./workerd.mjs";

const mock = await startMock({ apiKey: null });
const agent = new http.Agent({ keepAlive: true });
const post = (url, body, headers) => new Promise((resolve, reject) => {
  const data = Buffer.from(body);
  const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": data.length, ...headers } },
    (res) => { res.on("data", () => {}); res.on("end", () => resolve(res.statusCode)); });
  req.setTimeout(30_000, () => req.destroy(new Error("timed out")));
  req.on("error", reject);
  req.end(data);
});
const worker = await startWorkerd({ script: meteredFloor(mock.url) });
const url = `${worker.url}/v1/chat/completions`;
const modes = process.argv.slice(2).length ? process.argv.slice(2) : ["native", "loop", "loopnowait", "pump", "transform", "transform-parse"];
try {
  console.log("events  mode              workerd CPU per answer (ms), three rounds");
  for (const n of [10, 1000]) {
    const body = JSON.stringify({ model: `mock-stream+chunks=${n}+chunk_delay=1`, stream: true, messages: [{ role: "user", content: "hi" }] });
    const reps = n === 10 ? 150 : 5;
    for (const mode of modes) {
      const headers = { "x-floor": mode };
      for (let i = 0; i < 3; i++) await post(url, body, headers);
      const rounds = [];
      for (let r = 0; r < 3; r++) {
        const c0 = cpuMs(worker.pid);
        for (let i = 0; i < reps; i++) {
          const status = await post(url, body, headers);
          if (status !== 200) throw new Error(`${mode}: HTTP ${status}`);
        }
        rounds.push(((cpuMs(worker.pid) - c0) / reps).toFixed(2));
      }
      console.log(`${String(n).padStart(6)}  ${mode.padEnd(16)}  ${rounds.join("  ")}`);
    }
  }
} finally {
  await worker.stop();
  await mock.stop();
  agent.destroy();
}
