// What it costs workerd to pass a streamed answer through a JavaScript Worker, by the way the
// Worker handles the stream, with no router in it: workerd's process CPU per answer of 10 and
// 1,000 events (one a millisecond from the mock), three rounds each. Shows why the router's loop
// reads each chunk and writes it into a native IdentityTransformStream: any way of seeing the
// chunks in JavaScript costs a wake-up of the isolate per chunk, which native pass-through avoids.
// Usage: node perf/stream-floors.mjs [mode ...]   (modes: native loop loopnowait pull transform transform-parse)
import http from "node:http";
import { readFileSync } from "node:fs";
import { startMock } from "../tests/e2e/harness.mjs";
import { startWorkerd } from "./workerd.mjs";

const mock = await startMock({ apiKey: null });
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, 100 ticks a second
};
const agent = new http.Agent({ keepAlive: true });
const post = (url, body, headers) => new Promise((resolve, reject) => {
  const data = Buffer.from(body);
  const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": data.length, ...headers } },
    (res) => { res.on("data", () => {}); res.on("end", () => resolve(res.statusCode)); });
  req.setTimeout(30_000, () => req.destroy(new Error("timed out")));
  req.on("error", reject);
  req.end(data);
});
const script = `const sse = { headers: { "content-type": "text/event-stream" } };
export default { async fetch(req) {
  const r = await fetch("${mock.url}/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: await req.text() });
  const mode = req.headers.get("x-mode");
  if (mode === "native") return new Response(r.body, sse);
  if (mode === "loop" || mode === "loopnowait") {
    const { readable, writable } = new IdentityTransformStream();
    const writer = writable.getWriter(), reader = r.body.getReader();
    (async () => { for (;;) { const s = await reader.read(); if (s.done) break; if (mode === "loop") await writer.write(s.value); else writer.write(s.value); } await writer.close(); })()
      .catch((e) => writer.abort(e).catch(() => {}));
    return new Response(readable, sse);
  }
  if (mode === "pull") {
    const reader = r.body.getReader();
    return new Response(new ReadableStream({ async pull(c) { const s = await reader.read(); if (s.done) c.close(); else c.enqueue(s.value); } }, { highWaterMark: 0 }), sse);
  }
  if (mode === "transform") return new Response(r.body.pipeThrough(new TransformStream({ transform(c, ctl) { ctl.enqueue(c); } })), sse);
  if (mode === "transform-parse") {
    const dec = new TextDecoder(), enc = new TextEncoder();
    return new Response(r.body.pipeThrough(new TransformStream({ transform(c, ctl) {
      const t = dec.decode(c, { stream: true });
      try { JSON.parse(t.slice(6)); } catch {}
      ctl.enqueue(enc.encode(t));
    } })), sse);
  }
  return new Response("unknown x-mode", { status: 400 });
} }`;
const worker = await startWorkerd({ script });
const modes = process.argv.slice(2).length ? process.argv.slice(2) : ["native", "loop", "loopnowait", "pull", "transform", "transform-parse"];
try {
  console.log("events  mode              workerd CPU per answer (ms), three rounds");
  for (const n of [10, 1000]) {
    const body = JSON.stringify({ model: `mock-stream+chunks=${n}+chunk_delay=1`, stream: true, messages: [{ role: "user", content: "hi" }] });
    const reps = n === 10 ? 150 : 5;
    for (const mode of modes) {
      for (let i = 0; i < 3; i++) await post(worker.url, body, { "x-mode": mode });
      const rounds = [];
      for (let r = 0; r < 3; r++) {
        const c0 = cpuMs(worker.pid);
        for (let i = 0; i < reps; i++) {
          const status = await post(worker.url, body, { "x-mode": mode });
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
