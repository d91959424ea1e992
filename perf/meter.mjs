// CPU inside the Worker, for the perf harness only (never part of the deployed bundle).
//
// In local workerd the clock advances while code runs (in production it only moves on I/O), so the
// Worker's own execution can be timed from within: every call from JavaScript into the router's
// wasm (the fetch entry, each promise continuation of its futures, each stream chunk) is timed,
// outermost call only. Calls the wasm makes out to the runtime (fetch, new Response, the data
// point, KV) run inside those calls and are counted; workerd's HTTP server, its parsing of the
// request and writing of the response are not: they are not the Worker's CPU time.
//
// The clock ticks in whole milliseconds. Segments start at moments unrelated to the tick, so each
// one reads its true length on average and the sum over thousands of requests is exact to a few µs
// per request. Wall time inside a segment also counts any moment the OS runs another process on that
// core, so the figure is an upper bound on the CPU time.

/**
 * Replaces `WebAssembly.Instance` before the Worker's glue instantiates its module. With
 * `byImport`, each call the wasm makes out to JavaScript is timed too, by import name: where the
 * time inside goes (the runtime's fetch, Response, console.log, ...); the rest is the wasm's own.
 */
const patch = (byImport, off) => off ? `
// Not metered: the same entry and GET /__meter (counting requests only), nothing wrapped.
globalThis.__taskrouterMeter = { ms: 0, calls: 0, requests: 0, imports: {} };
globalThis.__taskrouterTimed = (f) => f;
` : `
const meter = (globalThis.__taskrouterMeter = { ms: 0, calls: 0, requests: 0, imports: {} });
let depth = 0;
const timed = (f) => function (...args) {
  if (depth++ > 0) {
    try { return f.apply(this, args); } finally { depth--; }
  }
  meter.calls++;
  const t = performance.now();
  try { return f.apply(this, args); } finally { depth--; meter.ms += performance.now() - t; }
};
const timedImport = (name, f) => function (...args) {
  const t = performance.now();
  try { return f.apply(this, args); } finally {
    const e = (meter.imports[name] ??= { ms: 0, calls: 0 });
    e.ms += performance.now() - t;
    e.calls++;
  }
};
globalThis.__taskrouterTimed = timed;
const Instance = WebAssembly.Instance;
WebAssembly.Instance = function (module, imports) {
  if (${byImport}) {
    // New objects: some namespaces are modules, read-only.
    imports = Object.fromEntries(Object.entries(imports).map(([space, ns]) => [space, Object.fromEntries(
      // Names like __wbg_send_6643ae0cec15aa10: the glue function and a hash; keep the name.
      Object.entries(ns).map(([name, f]) => [name, typeof f === "function" ? timedImport(name.replace(/^__wbg_|_[0-9a-f]{16}$/g, ""), f) : f]),
    )]));
  }
  const exports = {};
  for (const [name, value] of Object.entries(new Instance(module, imports).exports)) {
    exports[name] = typeof value === "function" ? timed(value) : value;
  }
  return { exports };
};
`;

/** The entry: the router's default export, its fetch timed, plus GET /__meter for the totals. */
const ENTRY = `
import "./perf-meter-patch.mjs";
import Router from "./index.js";
export * from "./index.js";
const meter = globalThis.__taskrouterMeter;
const timedFetch = globalThis.__taskrouterTimed(Router.prototype.fetch);
export default class Metered extends Router {
  fetch(request) {
    if (new URL(request.url).pathname === "/__meter") return Response.json(meter);
    meter.requests++;
    return timedFetch.call(this, request);
  }
}
`;

/**
 * Modules for `startRouter({ entryModules })` (perf/workerd.mjs): the metered entry first. `off`:
 * the same entry with nothing timed, for workerd's process CPU without the meter's own cost
 * (several timed calls per streamed event).
 */
export function meterModules({ byImport = false, off = false } = {}) {
  return [
    { path: "perf-meter-entry.mjs", contents: ENTRY },
    { path: "perf-meter-patch.mjs", contents: patch(byImport, off) },
  ];
}

/** The Worker's totals so far: ms inside its code, calls timed, requests (and per import). */
export async function readMeter(url) {
  const res = await fetch(`${url}/__meter`);
  if (!res.ok) throw new Error(`meter: HTTP ${res.status}`);
  return res.json();
}

/**
 * The floor Worker's source with the same meter: each synchronous stretch of its handler timed by
 * hand (a JavaScript Worker has no wasm boundary to wrap), GET /__meter for the totals. Streams
 * pass through natively, or by header `x-floor`: `loop`, the smallest loop that reads each chunk
 * and writes it into a native stream (`loopnowait`: without awaiting each write); `pump`, a
 * JavaScript `ReadableStream` pulling the provider's body; `transform`, a `TransformStream`;
 * `transform-parse`, one that also decodes and parses each chunk.
 */
export function meteredFloor(mockUrl) {
  return `const meter = { ms: 0, calls: 0, requests: 0 };
const now = () => performance.now();
function timed(f) { const t = now(); try { return f(); } finally { meter.ms += now() - t; meter.calls++; } }
export default { async fetch(req) {
  if (new URL(req.url).pathname === "/__meter") return Response.json(meter);
  meter.requests++;
  const j = await timed(() => req.json());
  const sent = timed(() => { if (j.model === "auto") j.model = "mock-fast";
    return fetch("${mockUrl}/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(j) }); });
  const r = await sent;
  if (!j.stream) { const text = await timed(() => r.text()); return timed(() => new Response(text, { headers: { "content-type": "application/json" } })); }
  const mode = req.headers.get("x-floor");
  const sse = { headers: { "content-type": "text/event-stream" } };
  if (mode === "loop" || mode === "loopnowait") {
    // The router's loop without the router: each chunk read and written into a native stream.
    const { readable, writable } = new IdentityTransformStream();
    const writer = writable.getWriter(), reader = r.body.getReader();
    (async () => { for (;;) { const s = await reader.read(); if (s.done) break; if (mode === "loop") await writer.write(s.value); else writer.write(s.value); } await writer.close(); })()
      .catch((e) => writer.abort(e).catch(() => {}));
    return new Response(readable, sse);
  }
  if (mode === "pump") {
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
  return new Response(r.body, sse); } }`;
}

/** Per request between two readings: ms inside the Worker, and (if timed) ms per import. */
export function perRequest(before, after) {
  const n = after.requests - before.requests;
  const imports = Object.entries(after.imports ?? {})
    .map(([name, e]) => ({ name, ms: (e.ms - (before.imports?.[name]?.ms ?? 0)) / n, calls: (e.calls - (before.imports?.[name]?.calls ?? 0)) / n }))
    .filter((e) => e.calls > 0)
    .sort((a, b) => b.ms - a.ms);
  const ms = (after.ms - before.ms) / n;
  return { ms, calls: (after.calls - before.calls) / n, imports, wasm_own_ms: imports.length ? ms - imports.reduce((s, e) => s + e.ms, 0) : undefined };
}
