// Performance harness: measures the router against the mock provider on 127.0.0.1, in workerd
// (a workerd config serving the built bundle: perf/workerd.mjs). Every loop is bounded in count and time.
// Usage: node perf/harness.mjs [--quick] [--out target/perf/results.json]   (scripts/perf.sh runs it)
import http from "node:http";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { startMock, testRules, GATEWAY_KEY, ROOT } from "../tests/e2e/harness.mjs";
import { bigRules, prose8k } from "./workload.mjs";
import { meterModules, meteredFloor, perRequest, readMeter } from "./meter.mjs";
import { cpuMs, startRouter, startWorkerd } from "./workerd.mjs";

const QUICK = process.argv.includes("--quick");
// `--cpu-only VAR=VALUE,...`: only the CPU cases, with extra Worker vars (for experiments).
const cpuOnlyArg = process.argv.indexOf("--cpu-only");
const CPU_ONLY = cpuOnlyArg > 0 ? Object.fromEntries((process.argv[cpuOnlyArg + 1] ?? "").split(",").filter(Boolean).map((kv) => kv.split("="))) : null;
const outArg = process.argv.indexOf("--out");
const OUT = outArg > 0 ? process.argv[outArg + 1] : path.join(ROOT, "target/perf/results.json");
const WARM = Number(process.env.PERF_WARM ?? 500);
// `--cpu-breakdown`: also time each call the wasm makes out to JavaScript, by name (costs a little).
const BREAKDOWN = process.argv.includes("--cpu-breakdown");
// `--streams-only`: only the CPU of streamed answers (section 3c), for experiments.
const STREAMS_ONLY = process.argv.includes("--streams-only");
// `--cold-only`: only the cold starts (section 4), nine of each, for experiments.
const COLD_ONLY = process.argv.includes("--cold-only");
const scale = (n) => (QUICK ? Math.max(10, Math.round(n / 5)) : n);

// Streams for time to first byte: 20 chunks, 5 ms apart.
const STREAM_MODEL = "mock-stream+chunks=20+chunk_delay=5";
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * POST JSON; resolve with [ms to first byte, ms total, status]. `fresh`: on a new connection (long
 * streams: after a 100,000-chunk answer local workerd sometimes resets the kept-alive connection
 * on its next request, whatever the Worker does, a native pass-through included).
 */
function post(url, body, headers = {}, { fresh = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const t0 = performance.now();
    let first = 0;
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent: fresh ? false : agent,
        headers: { "content-type": "application/json", "content-length": data.length, ...headers } },
      (res) => {
        res.once("data", () => (first = performance.now() - t0));
        res.on("data", () => {});
        res.on("end", () => resolve([first || performance.now() - t0, performance.now() - t0, res.statusCode]));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(data);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const stats = (xs, seconds) => ({
  n: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), p99: pct(xs, 99),
  rps: seconds ? xs.length / seconds : undefined,
});
const round = (x, d = 3) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

const rssMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

const chatBody = (model, content = "hello there", extra = {}) => ({ model, messages: [{ role: "user", content }], ...extra });
const auth = { authorization: `Bearer ${GATEWAY_KEY}` };

/** Sequential A/B: alternate one direct and one routed request, `pairs` times (at most `maxS` seconds). */
async function abSequential(direct, routed, pairs, maxS) {
  const a = [], b = [];
  const end = performance.now() + maxS * 1000;
  for (let i = 0; i < pairs && performance.now() < end; i++) {
    const [, ta] = await direct();
    const [, tb] = await routed();
    a.push(ta);
    b.push(tb);
  }
  return [a, b];
}

/** Concurrent: `conns` requests in flight, `total` requests (at most `maxS` s); latencies and seconds. */
async function concurrent(send, conns, total, maxS) {
  const lat = [];
  let issued = 0;
  const end = performance.now() + maxS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (issued < total && performance.now() < end) {
        issued++;
        const [, t] = await send();
        lat.push(t);
      }
    }),
  );
  return [lat, (performance.now() - t0) / 1000];
}

const results = { when: new Date().toISOString(), quick: QUICK, machine: { cpus: (await import("node:os")).cpus().length } };
const mock = await startMock({ apiKey: null });

// (1) Overhead: direct to the mock vs through the Worker; sequential and 10 connections; plus a 30 ms provider.
if (!CPU_ONLY && !STREAMS_ONLY && !COLD_ONLY) {
  const rules = testRules(mock.url, {
    models: { fast: { provider: "mock", model: "mock-fast" }, strong: { provider: "mock", model: "mock-slow+delay=30" } },
    routes: [], default: "fast",
  });
  const worker = await startRouter({ rules });
  const direct = () => post(`${mock.url}/v1/chat/completions`, chatBody("mock-fast"));
  const routed = () => post(`${worker.url}/v1/chat/completions`, chatBody("auto"), auth);
  for (let i = 0; i < 50; i++) { await direct(); await routed(); } // warm up both paths
  const [sd, sw] = await abSequential(direct, routed, scale(1000), 40);
  const cd = await concurrent(direct, 10, scale(3000), 20);
  const cw = await concurrent(routed, 10, scale(3000), 20);
  const slowDirect = () => post(`${mock.url}/v1/chat/completions`, chatBody("mock-slow+delay=30"));
  const slowRouted = () => post(`${worker.url}/v1/chat/completions`, chatBody("strong"), auth);
  const [s30d, s30w] = await abSequential(slowDirect, slowRouted, scale(200), 30);
  results.overhead = {
    sequential: { direct: stats(sd), worker: stats(sw), added_median_ms: pct(sw, 50) - pct(sd, 50) },
    concurrent_10: { direct: stats(cd[0], cd[1]), worker: stats(cw[0], cw[1]), added_median_ms: pct(cw[0], 50) - pct(cd[0], 50) },
    provider_30ms: { direct: stats(s30d), worker: stats(s30w), added_median_ms: pct(s30w, 50) - pct(s30d, 50),
                     added_pct: (100 * (pct(s30w, 50) - pct(s30d, 50))) / pct(s30d, 50) },
  };

  // (2) Streaming: time to first byte, direct vs through the Worker; workerd memory over long streams.
  const streamModel = STREAM_MODEL;
  const ttfbD = [], ttfbW = [];
  for (let i = 0; i < scale(100); i++) {
    ttfbD.push((await post(`${mock.url}/v1/chat/completions`, chatBody(streamModel, "hi", { stream: true })))[0]);
    ttfbW.push((await post(`${worker.url}/v1/chat/completions`, chatBody(streamModel, "hi", { stream: true }), auth))[0]);
  }
  await worker.stop();
  const streamRules = testRules(mock.url, {
    models: { fast: { provider: "mock", model: "mock-fast" },
              long: { provider: "mock", model: "mock-long+chunks=10000" }, short: { provider: "mock", model: "mock-short+chunks=1000" },
              longer: { provider: "mock", model: "mock-longer+chunks=50000" },
              longest: { provider: "mock", model: "mock-longest+chunks=100000" } },
    routes: [], default: "fast",
  });
  const sworker = await startRouter({ rules: streamRules });
  const pid = sworker.pid;
  const peakDuring = async (model) => {
    let peak = rssMb(pid);
    const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 10);
    const [, total] = await post(`${sworker.url}/v1/chat/completions`, chatBody(model, "hi", { stream: true }), auth, { fresh: true });
    clearInterval(timer);
    return [peak, total];
  };
  for (let i = 0; i < 3; i++) await peakDuring("short"); // warm
  const base = rssMb(pid);
  const [peak1k, t1k] = await peakDuring("short");
  const [peak10k, t10k] = await peakDuring("long");
  const [peak50k, t50k] = await peakDuring("longer");
  const [peak100k, t100k] = await peakDuring("longest");
  await sworker.stop();
  results.streaming = {
    ttfb: { direct: stats(ttfbD), worker: stats(ttfbW), added_median_ms: pct(ttfbW, 50) - pct(ttfbD, 50) },
    // V8's heap grows to its working size over the first tens of thousands of chunks; flat means
    // no growth after that: the second 50,000 chunks.
    workerd_rss_mb: { before: base, peak_1000_chunks: peak1k, peak_10000_chunks: peak10k, peak_50000_chunks: peak50k,
                      peak_100000_chunks: peak100k, growth_10k_vs_1k: peak10k - peak1k, growth_50k_vs_10k: peak50k - peak10k,
                      growth_100k_vs_50k: peak100k - peak50k },
    stream_ms: { chunks_1000: t1k, chunks_10000: t10k, chunks_50000: t50k, chunks_100000: t100k },
  };
}

// (3) CPU per request, two ways. Inside the Worker: the time its own code runs (perf/meter.mjs;
// the clock advances while code runs in local workerd). And workerd's process CPU time / requests,
// which adds the runtime's HTTP server and everything else in the process. Each is the median of
// several rounds after a warm-up (V8 compiles hot code in background threads of the same process,
// and a single long run also catches the odd collection: rounds make the figure steady).
async function cpuPerRequest(pid, url, send, { warm = WARM, perRound = scale(400), rounds: count = QUICK ? 3 : 7 } = {}) {
  for (let i = 0; i < warm; i++) await send();
  const rounds = [], main = [], inside = [];
  for (let r = 0; r < count; r++) {
    const n = perRound;
    const m0 = await readMeter(url);
    const [c0, t0] = [cpuMs(pid), cpuMs(pid, true)];
    for (let i = 0; i < n; i++) {
      const [, , status] = await send();
      if (status !== 200) throw new Error(`HTTP ${status}`);
    }
    rounds.push((cpuMs(pid) - c0) / n);
    main.push((cpuMs(pid, true) - t0) / n);
    inside.push(perRequest(m0, await readMeter(url)));
  }
  inside.sort((a, b) => a.ms - b.ms);
  // Rounds spread by 20-40 % on this VM (collections, neighbours); the best round is kept beside
  // the median as the cost with the least interference.
  return { process: pct(rounds, 50), main_thread: pct(main, 50), best_round: Math.min(...rounds),
           inside: inside[Math.floor(inside.length / 2)] };
}
if (!STREAMS_ONLY && !COLD_ONLY) {
  const worker = await startRouter({ rules: bigRules(mock.url), vars: CPU_ONLY ?? {}, entryModules: meterModules({ byImport: BREAKDOWN }) });
  const pid = worker.pid;
  const cases = {
    small_prompt: chatBody("auto", "hello there", { metadata: { tier: "tier3" } }),
    prompt_8k_100_routes_2000_keywords: chatBody("auto", prose8k(), { metadata: { tier: "tier3" } }),
  };
  results.cpu_inside_worker_ms = {};
  results.cpu_per_request_ms = {};
  results.cpu_main_thread_ms = {};
  results.cpu_best_round_ms = {};
  if (BREAKDOWN) results.cpu_inside_worker_by_import = {};
  for (const [name, body] of Object.entries(cases)) {
    const payload = JSON.stringify(body);
    const cpu = await cpuPerRequest(pid, worker.url, () => post(`${worker.url}/v1/chat/completions`, payload, auth));
    results.cpu_inside_worker_ms[name] = cpu.inside.ms;
    results.cpu_per_request_ms[name] = cpu.process;
    results.cpu_best_round_ms[name] = cpu.best_round;
    results.cpu_main_thread_ms[name] = cpu.main_thread;
    if (BREAKDOWN) results.cpu_inside_worker_by_import[name] = { wasm_own_ms: cpu.inside.wasm_own_ms, imports: cpu.inside.imports.slice(0, 20) };
  }
  // The same workerd process answering /healthz: the runtime's own share, with no routing at all.
  const healthz = () => new Promise((res, rej) => http.get(`${worker.url}/healthz`, { agent }, (r) => r.resume().on("end", () => res([0, 0, r.statusCode]))).on("error", rej));
  const base = await cpuPerRequest(pid, worker.url, healthz);
  results.cpu_inside_worker_ms.healthz_baseline = base.inside.ms;
  results.cpu_per_request_ms.healthz_baseline = base.process;
  results.cpu_main_thread_ms.healthz_baseline = base.main_thread;
  results.cpu_best_round_ms.healthz_baseline = base.best_round;
  await worker.stop();
}

// (3b) The runtime's floor: a minimal JavaScript Worker that only forwards the request to the mock
// (parse, set the model, fetch, return). Its CPU and added latency are what any Worker pays here.
if (!STREAMS_ONLY && !COLD_ONLY) {
  // Streams pass through natively, or (header x-floor: pump) through the smallest JavaScript loop
  // that sees each chunk: what memory any Worker that watches a stream pays here.
  const floor = await startWorkerd({ script: meteredFloor(mock.url) });
  const { url, pid } = floor;
  const payload = JSON.stringify(chatBody("auto", prose8k()));
  const cpu = await cpuPerRequest(pid, url, () => post(`${url}/v1/chat/completions`, payload));
  results.floor_js_proxy = { cpu_inside_worker_ms: cpu.inside.ms, cpu_per_request_ms: cpu.process, cpu_main_thread_ms: cpu.main_thread, cpu_best_round_ms: cpu.best_round };
  // The small request too, so each of the router's cases has its own floor.
  const small = JSON.stringify(chatBody("auto", "hello there"));
  const cpuSmall = await cpuPerRequest(pid, url, () => post(`${url}/v1/chat/completions`, small));
  results.floor_js_proxy.small_prompt = { cpu_inside_worker_ms: cpuSmall.inside.ms, cpu_per_request_ms: cpuSmall.process };
  results.router_share = {
    inside_worker_8k_above_floor_ms: results.cpu_inside_worker_ms.prompt_8k_100_routes_2000_keywords - cpu.inside.ms,
    cpu_8k_above_floor_ms: results.cpu_per_request_ms.prompt_8k_100_routes_2000_keywords - cpu.process,
    cpu_small_above_floor_ms: results.cpu_per_request_ms.small_prompt - cpuSmall.process,
    inside_worker_small_above_floor_ms: results.cpu_inside_worker_ms.small_prompt - cpuSmall.inside.ms,
    main_thread_cpu_8k_above_floor_ms: results.cpu_main_thread_ms.prompt_8k_100_routes_2000_keywords - cpu.main_thread,
    main_thread_cpu_small_above_floor_ms: results.cpu_main_thread_ms.small_prompt - cpuSmall.main_thread,
    best_round_cpu_8k_above_floor_ms: results.cpu_best_round_ms.prompt_8k_100_routes_2000_keywords - cpu.best_round,
    best_round_cpu_small_above_floor_ms: results.cpu_best_round_ms.small_prompt - cpuSmall.best_round,
  };
  if (!CPU_ONLY) {
    const direct = () => post(`${mock.url}/v1/chat/completions`, chatBody("mock-fast"));
    const proxied = () => post(`${url}/v1/chat/completions`, chatBody("auto"));
    for (let i = 0; i < 50; i++) { await direct(); await proxied(); }
    const [d, p] = await abSequential(direct, proxied, scale(1000), 30);
    results.floor_js_proxy.added_median_ms = pct(p, 50) - pct(d, 50);
    // The same with the 30 ms provider: what any Worker adds when the runtime sits idle for 30 ms.
    const slowDirect = () => post(`${mock.url}/v1/chat/completions`, chatBody("mock-slow+delay=30"));
    const slowProxied = () => post(`${url}/v1/chat/completions`, chatBody("mock-slow+delay=30"));
    const [sd, sp] = await abSequential(slowDirect, slowProxied, scale(200), 30);
    results.floor_js_proxy.provider_30ms_added_median_ms = pct(sp, 50) - pct(sd, 50);
    const streamBody = chatBody(STREAM_MODEL, "hi", { stream: true });
    const td = [], tp = [];
    for (let i = 0; i < scale(100); i++) {
      td.push((await post(`${mock.url}/v1/chat/completions`, streamBody))[0]);
      tp.push((await post(`${url}/v1/chat/completions`, streamBody))[0]);
    }
    results.floor_js_proxy.stream_ttfb_added_median_ms = pct(tp, 50) - pct(td, 50);
    const peak = async (chunks) => {
      let top = rssMb(pid);
      const timer = setInterval(() => (top = Math.max(top, rssMb(pid))), 10);
      await post(`${url}/v1/chat/completions`, chatBody(`mock-long+chunks=${chunks}`, "hi", { stream: true }), { "x-floor": "pump" }, { fresh: true });
      clearInterval(timer);
      return top;
    };
    for (let i = 0; i < 3; i++) await peak(1000);
    const [p10k, p50k, p100k] = [await peak(10000), await peak(50000), await peak(100000)];
    results.floor_js_proxy.js_pump_rss_mb = { peak_10000_chunks: p10k, peak_50000_chunks: p50k, peak_100000_chunks: p100k,
                                              growth_50k_vs_10k: p50k - p10k, growth_100k_vs_50k: p100k - p50k };
  }
  await floor.stop();
}
function printBreakdown() {
  for (const [name, b] of Object.entries(results.cpu_inside_worker_by_import)) {
    console.log(`inside the Worker, ${name}: ${round(results.cpu_inside_worker_ms[name])} ms, of which the wasm's own ${round(b.wasm_own_ms)} ms; calls out:`);
    for (const e of b.imports.slice(0, 12)) console.log(`  ${e.name.padEnd(40)} ${String(round(e.ms)).padStart(7)} ms  x${round(e.calls, 1)}`);
  }
}
if (CPU_ONLY) {
  console.log(JSON.stringify({ inside_worker: { ...results.cpu_inside_worker_ms, floor: results.floor_js_proxy.cpu_inside_worker_ms },
                                process: { ...results.cpu_per_request_ms, floor: results.floor_js_proxy.cpu_per_request_ms },
                                main_thread: { ...results.cpu_main_thread_ms, floor: results.floor_js_proxy.cpu_main_thread_ms },
                                best_round: { ...results.cpu_best_round_ms, floor: results.floor_js_proxy.cpu_best_round_ms } }));
  if (BREAKDOWN) printBreakdown();
  await mock.stop();
  agent.destroy();
  process.exit(0);
}

// (3c) CPU per streamed answer of 10, 100 and 1,000 events, through the router and through two
// floors: the native pass-through (the JavaScript Worker hands the provider's body to the
// runtime) and the smallest JavaScript loop that sees each chunk (reads it and writes it into a
// native stream, as the router's loop does): what any Worker that watches a stream pays here.
// What one more event costs is the difference between the 1,000- and the 10-event streams over
// 990 events. The mock sends one event a millisecond, so each reaches the Worker on its own
// read, as a model's tokens do (without a pause, events arriving together are read, and paid
// for, as one). workerd's CPU is read from a router without the meter (which times each call
// into the wasm, several per event); the CPU inside the Worker from one with it.
if (!COLD_ONLY) {
  const EVENTS = [10, 100, 1000];
  const model = (n) => `mock-stream+chunks=${n}+chunk_delay=1`;
  // Requests per round: about 1.5-3 s of streaming each, so that workerd's CPU time (read from
  // /proc in 10 ms ticks) is a few hundred ticks a round.
  const perRound = { 10: 100, 100: 15, 1000: 3 };
  // The router names its models in the rules (`s10` ...); the floors send the mock's own names.
  const measure = async (pid, url, headers, name) => {
    const out = {};
    for (const n of EVENTS) {
      const body = JSON.stringify(chatBody(name(n), "hi", { stream: true }));
      const cpu = await cpuPerRequest(pid, url, () => post(`${url}/v1/chat/completions`, body, headers),
        { warm: Math.max(3, perRound[n] / 2), perRound: QUICK ? Math.max(2, Math.round(perRound[n] / 2)) : perRound[n], rounds: QUICK ? 3 : 5 });
      out[n] = { process_ms: cpu.process, inside_ms: cpu.inside.ms, best_round_ms: cpu.best_round };
    }
    const per = (k) => (out[1000][k] - out[10][k]) / 990;
    return { events: out, per_event_process_ms: per("process_ms"), per_event_inside_ms: per("inside_ms") };
  };
  const models = Object.fromEntries(EVENTS.map((n) => [`s${n}`, { provider: "mock", model: model(n) }]));
  const rules = testRules(mock.url, { models, routes: [], default: "s10" });
  const alias = (n) => `s${n}`;
  // The router's own meter for /__meter only: a module that counts nothing.
  const bare = await startRouter({ rules, entryModules: meterModules({ off: true }) });
  const router = await measure(bare.pid, bare.url, auth, alias);
  await bare.stop();
  const metered = await startRouter({ rules, entryModules: meterModules({ byImport: BREAKDOWN }) });
  const inside = await measure(metered.pid, metered.url, auth, alias);
  for (const n of EVENTS) router.events[n].inside_ms = inside.events[n].inside_ms;
  router.per_event_inside_ms = inside.per_event_inside_ms;
  if (BREAKDOWN) {
    // Where one 10-event stream's time inside goes, by call out of the wasm.
    const m0 = await readMeter(metered.url);
    const body = JSON.stringify(chatBody("s10", "hi", { stream: true }));
    for (let i = 0; i < 200; i++) await post(`${metered.url}/v1/chat/completions`, body, auth);
    const b = perRequest(m0, await readMeter(metered.url));
    router.breakdown_10_events = { inside_ms: b.ms, calls: b.calls, wasm_own_ms: b.wasm_own_ms, imports: b.imports.slice(0, 20) };
  }
  await metered.stop();
  const f = await startWorkerd({ script: meteredFloor(mock.url) });
  const floor = await measure(f.pid, f.url, {}, model);
  const jsLoop = await measure(f.pid, f.url, { "x-floor": "loop" }, model);
  await f.stop();
  results.streams_cpu = { router, floor, js_loop_floor: jsLoop,
    above_floor_ms: Object.fromEntries(EVENTS.map((n) => [n, router.events[n].process_ms - floor.events[n].process_ms])),
    above_js_loop_ms: Object.fromEntries(EVENTS.map((n) => [n, router.events[n].process_ms - jsLoop.events[n].process_ms])),
    per_event_above_floor_ms: router.per_event_process_ms - floor.per_event_process_ms,
    per_event_above_js_loop_ms: router.per_event_process_ms - jsLoop.per_event_process_ms };
}
if (STREAMS_ONLY) {
  console.log(JSON.stringify(results.streams_cpu, null, 1));
  await mock.stop();
  agent.destroy();
  process.exit(0);
}

// (4) Cold start: a new workerd until the first chat answer, for the router and for the floor;
// the router without its static assets binding (the rules here do not use the task model, which
// is then not read at all: what the binding alone costs); and with rules that turn the model on,
// so the first prompt is labelled (what reading the model and its lexicon costs).
{
  // Also split: until workerd answers /healthz (polled every 50 ms: the wasm compiled and
  // instantiated, no rules read), then the first chat answer (rules read and compiled, the task
  // model read, and every function the request runs compiled on its first call).
  // One cold start: [ms until workerd answers /healthz, ms from then to the first chat answer].
  const cold = async (what, start, headers) => {
    const t0 = performance.now();
    const w = await start();
    const t1 = performance.now();
    const [, , status] = await post(`${w.url}/v1/chat/completions`, chatBody("auto"), headers);
    if (status !== 200) throw new Error(`cold start (${what}): HTTP ${status}`);
    const split = [t1 - t0, performance.now() - t1];
    await w.stop();
    return split;
  };
  const times = [], floorTimes = [], noAssets = [], labelled = [], ready = [], firstAnswer = [];
  for (let i = 0; i < (QUICK ? 1 : COLD_ONLY ? 9 : 5); i++) {
    const [r, first] = await cold("router", () => startRouter({ rules: testRules(mock.url) }), auth);
    times.push(r + first);
    ready.push(r);
    firstAnswer.push(first);
    noAssets.push((await cold("no assets", () => startRouter({ rules: testRules(mock.url), assets: false }), auth)).reduce((a, b) => a + b));
    // Rules that turn the task model on: the first prompt is labelled, which also builds the
    // lexicon's index.
    labelled.push((await cold("labelled", () => startRouter({ rules: testRules(mock.url, { classifier: {} }) }), auth)).reduce((a, b) => a + b));
    floorTimes.push((await cold("floor", () => startWorkerd({ script: meteredFloor(mock.url) }), {})).reduce((a, b) => a + b));
  }
  results.cold_start_ms = { runs: times, median: pct(times, 50), floor_runs: floorTimes, floor_median: pct(floorTimes, 50),
                            without_assets_runs: noAssets, without_assets_median: pct(noAssets, 50),
                            labelled_runs: labelled, labelled_median: pct(labelled, 50),
                            ready_median: pct(ready, 50), first_answer_median: pct(firstAnswer, 50) };
}
if (COLD_ONLY) {
  console.log(JSON.stringify(results.cold_start_ms, null, 1));
  await mock.stop();
  agent.destroy();
  process.exit(0);
}
// (4b) Limits shared across the edge (issue 17): the same router with the Durable Objects bound,
// a key with both limits (served from leases) against a key with none, interleaved; and how many
// requests one object call serves in steady state (the isolate's count in /healthz).
if (!CPU_ONLY) {
  const limited = "tr-perf-limited";
  const w = await startRouter({
    rules: testRules(mock.url, { models: { fast: { provider: "mock", model: "mock-fast" } }, routes: [], default: "fast" }),
    // Leases of 200 requests (10 % of the limit), renewed when half gone; spend slices of 100 USD.
    keys: { [limited]: { id: "limited", requests_per_minute: 2000, spend_usd_per_day: 1000 } },
    objects: true,
  });
  const plain = () => post(`${w.url}/v1/chat/completions`, chatBody("auto"), auth);
  const leased = () => post(`${w.url}/v1/chat/completions`, chatBody("auto"), { authorization: `Bearer ${limited}` });
  for (let i = 0; i < 100; i++) { await plain(); await leased(); } // warm up, leases held
  const calls = async () => (await (await fetch(`${w.url}/healthz`)).json()).object_calls;
  const before = await calls();
  const [lp, ll] = await abSequential(plain, leased, scale(1000), 40);
  const made = (await calls()) - before;
  await w.stop();
  results.shared_limits = {
    no_limits: stats(lp), leased_limits: stats(ll), added_median_ms: pct(ll, 50) - pct(lp, 50),
    requests: ll.length, object_calls: made, requests_per_object_call: made ? ll.length / made : null,
  };
}
await mock.stop();
agent.destroy();

// (5) Size: the wasm after wasm-opt, and what `wrangler deploy` would upload.
{
  const wasm = readFileSync(path.join(ROOT, "build/index_bg.wasm"));
  const outdir = mkdtempSync(path.join(tmpdir(), "taskrouter-perf-"));
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], { cwd: ROOT, stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  const files = readdirSync(outdir);
  const bundle = files.reduce((s, f) => s + statSync(path.join(outdir, f)).size, 0);
  const bundleGz = files.reduce((s, f) => s + gzipSync(readFileSync(path.join(outdir, f)), { level: 9 }).length, 0);
  rmSync(outdir, { recursive: true, force: true });
  results.size_bytes = { wasm: wasm.length, wasm_gzip: gzipSync(wasm, { level: 9 }).length, upload_bundle: bundle, upload_bundle_gzip: bundleGz };
}

// Budgets (issue 8).
const o = results.overhead, s = results.streaming;
results.budgets = [
  ["added median latency, sequential <= 1 ms", o.sequential.added_median_ms, o.sequential.added_median_ms <= 1],
  ["added median latency <= 3% of a 30 ms call", o.provider_30ms.added_pct, o.provider_30ms.added_pct <= 3],
  ["CPU per request inside the Worker, 8 KB / 100 routes / 2000 keywords <= 0.5 ms", results.cpu_inside_worker_ms.prompt_8k_100_routes_2000_keywords, results.cpu_inside_worker_ms.prompt_8k_100_routes_2000_keywords <= 0.5],
  ["workerd process CPU per request (with its HTTP server), same case <= 0.5 ms", results.cpu_per_request_ms.prompt_8k_100_routes_2000_keywords, results.cpu_per_request_ms.prompt_8k_100_routes_2000_keywords <= 0.5],
  ["wasm after wasm-opt <= 1 MB gzip", results.size_bytes.wasm_gzip, results.size_bytes.wasm_gzip <= 1024 * 1024],
  ["streaming TTFB within 1 ms of direct", s.ttfb.added_median_ms, s.ttfb.added_median_ms <= 1],
  // Peak RSS includes garbage V8 has not collected yet: flat means it stops growing with length.
  ["workerd memory flat in stream length (peak at 100k chunks vs 50k < 5 MB)", s.workerd_rss_mb.growth_100k_vs_50k, s.workerd_rss_mb.growth_100k_vs_50k < 5],
  ...(results.shared_limits
    ? [["key limits from Durable Object leases: added median latency over a key without limits <= 0.05 ms", results.shared_limits.added_median_ms, results.shared_limits.added_median_ms <= 0.05]]
    : []),
].map(([budget, value, met]) => ({ budget, value: round(value), met }));
// The same budgets for the router's own share: what it adds above the runtime's floor (a JavaScript
// Worker that only forwards, measured in the same run), since the floor alone can exceed a budget.
const fl = results.floor_js_proxy;
const share30 = (100 * (o.provider_30ms.added_median_ms - fl.provider_30ms_added_median_ms)) / o.provider_30ms.direct.p50;
results.budgets_above_floor = [
  ["added median latency above the floor's, sequential <= 1 ms", o.sequential.added_median_ms - fl.added_median_ms, o.sequential.added_median_ms - fl.added_median_ms <= 1],
  ["added latency above the floor's <= 3% of a 30 ms call", share30, share30 <= 3],
  ["CPU per request above the floor, 8 KB / 100 routes / 2000 keywords <= 0.5 ms", results.router_share.cpu_8k_above_floor_ms, results.router_share.cpu_8k_above_floor_ms <= 0.5],
  ["streaming TTFB above the floor's (native pass-through) <= 1 ms", s.ttfb.added_median_ms - fl.stream_ttfb_added_median_ms, s.ttfb.added_median_ms - fl.stream_ttfb_added_median_ms <= 1],
  ["memory growth 50k -> 100k chunks at most the smallest JS loop's", s.workerd_rss_mb.growth_100k_vs_50k, s.workerd_rss_mb.growth_100k_vs_50k <= fl.js_pump_rss_mb.growth_100k_vs_50k],
].map(([budget, value, met]) => ({ budget, value: round(value), met }));

// Issue 19's table: each figure as the floor's, the router's, the router's cost above the floor,
// and the target.
{
  const sc = results.streams_cpu, fs = fl.small_prompt;
  const row = (what, floor, router, above, target, met) => ({ what, floor: round(floor), router: round(router), above_floor: round(above), target, met });
  const ttfbAbove = s.ttfb.added_median_ms - fl.stream_ttfb_added_median_ms;
  const upload = results.size_bytes.upload_bundle_gzip;
  results.issue19 = [
    row("small request, added p50 (ms)", fl.added_median_ms, o.sequential.added_median_ms, o.sequential.added_median_ms - fl.added_median_ms, "above floor <= 0.15", o.sequential.added_median_ms - fl.added_median_ms <= 0.15),
    row("small request, workerd CPU per request (ms)", fs.cpu_per_request_ms, results.cpu_per_request_ms.small_prompt, results.router_share.cpu_small_above_floor_ms, "<= floor + 0.15", results.router_share.cpu_small_above_floor_ms <= 0.15),
    row("8 KB / 100 routes / 2,000 keywords, CPU per request (ms)", fl.cpu_per_request_ms, results.cpu_per_request_ms.prompt_8k_100_routes_2000_keywords, results.router_share.cpu_8k_above_floor_ms, "<= floor + 0.3", results.router_share.cpu_8k_above_floor_ms <= 0.3),
    ...[10, 100, 1000].map((n) => row(`${n}-event stream, workerd CPU per request (ms)`, sc.floor.events[n].process_ms, sc.router.events[n].process_ms, sc.above_floor_ms[n],
      n === 10 ? "<= floor + 0.5" : "-", n === 10 ? sc.above_floor_ms[n] <= 0.5 : null)),
    row("stream, workerd CPU per further event (ms)", sc.floor.per_event_process_ms, sc.router.per_event_process_ms, sc.per_event_above_floor_ms, "-", null),
    ...[10, 100, 1000].map((n) => row(`${n}-event stream, CPU, floor = smallest JS loop (ms)`, sc.js_loop_floor.events[n].process_ms, sc.router.events[n].process_ms, sc.above_js_loop_ms[n], "-", null)),
    row("stream, CPU per further event, floor = smallest JS loop (ms)", sc.js_loop_floor.per_event_process_ms, sc.router.per_event_process_ms, sc.per_event_above_js_loop_ms, "-", null),
    row("stream, CPU inside the Worker per further event (ms)", sc.floor.per_event_inside_ms, sc.router.per_event_inside_ms, sc.router.per_event_inside_ms - sc.floor.per_event_inside_ms, "-", null),
    row("stream, first body byte (ms after direct)", fl.stream_ttfb_added_median_ms, s.ttfb.added_median_ms, ttfbAbove, "above floor <= 0.3", ttfbAbove <= 0.3),
    row("cold start: new workerd to first chat answer (ms)", results.cold_start_ms.floor_median, results.cold_start_ms.median, results.cold_start_ms.median - results.cold_start_ms.floor_median, "<= 60", results.cold_start_ms.median <= 60),
    row("cold start without the static assets binding (ms)", results.cold_start_ms.floor_median, results.cold_start_ms.without_assets_median, results.cold_start_ms.without_assets_median - results.cold_start_ms.floor_median, "-", null),
    row("cold start, the first prompt labelled by the task model (ms)", results.cold_start_ms.floor_median, results.cold_start_ms.labelled_median, results.cold_start_ms.labelled_median - results.cold_start_ms.floor_median, "-", null),
    row("upload, gzip (KiB)", null, upload / 1024, null, "<= 400", upload <= 400 * 1024),
  ];
}
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2));
const row = (label, st) => `${label.padEnd(34)} ${String(round(st.p50)).padStart(8)} ${String(round(st.p90)).padStart(8)} ${String(round(st.p99)).padStart(8)} ${st.rps ? String(round(st.rps, 0)).padStart(8) : "       -"}`;
console.log(`\n${"latency (ms)".padEnd(34)} ${"p50".padStart(8)} ${"p90".padStart(8)} ${"p99".padStart(8)} ${"req/s".padStart(8)}`);
console.log(row("sequential, direct", o.sequential.direct));
console.log(row("sequential, through the Worker", o.sequential.worker));
console.log(row("10 connections, direct", o.concurrent_10.direct));
console.log(row("10 connections, through the Worker", o.concurrent_10.worker));
console.log(row("30 ms provider, direct", o.provider_30ms.direct));
console.log(row("30 ms provider, through the Worker", o.provider_30ms.worker));
console.log(row("stream TTFB, direct", s.ttfb.direct));
console.log(row("stream TTFB, through the Worker", s.ttfb.worker));
console.log(`\nruntime floor (a JS Worker that only forwards): CPU ${round(results.floor_js_proxy.cpu_per_request_ms)} ms/request, added median ${round(results.floor_js_proxy.added_median_ms)} ms`);
const f = results.floor_js_proxy;
console.log(`runtime floor, streams: TTFB added ${round(f.stream_ttfb_added_median_ms)} ms (native pass-through); smallest JS loop over chunks: RSS ${round(f.js_pump_rss_mb.peak_10000_chunks, 1)} / ${round(f.js_pump_rss_mb.peak_50000_chunks, 1)} / ${round(f.js_pump_rss_mb.peak_100000_chunks, 1)} MB at 10k / 50k / 100k chunks; 30 ms provider: added ${round(f.provider_30ms_added_median_ms)} ms`);
console.log(`CPU inside the Worker (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results.cpu_inside_worker_ms).map(([k, v]) => [k, round(v)])))}; floor ${round(results.floor_js_proxy.cpu_inside_worker_ms)}`);
if (BREAKDOWN) printBreakdown();
console.log(`router above the floor: CPU ${JSON.stringify(Object.fromEntries(Object.entries(results.router_share).map(([k, v]) => [k, round(v)])))}`);
console.log(`CPU per request in workerd (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results.cpu_per_request_ms).map(([k, v]) => [k, round(v)])))}`);
console.log(`  best round (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results.cpu_best_round_ms).map(([k, v]) => [k, round(v)])))}; floor ${round(results.floor_js_proxy.cpu_best_round_ms)}`);
console.log(`  of which workerd's main thread (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results.cpu_main_thread_ms).map(([k, v]) => [k, round(v)])))}; floor ${round(results.floor_js_proxy.cpu_main_thread_ms)}`);
console.log(`workerd RSS (MB): ${JSON.stringify(Object.fromEntries(Object.entries(s.workerd_rss_mb).map(([k, v]) => [k, round(v, 1)])))}`);
console.log(`cold start (ms): median ${round(results.cold_start_ms.median, 0)} (answering /healthz ${round(results.cold_start_ms.ready_median, 0)}, then the first chat answer ${round(results.cold_start_ms.first_answer_median, 0)}); sizes (bytes): ${JSON.stringify(results.size_bytes)}`);
if (results.shared_limits) {
  const sl = results.shared_limits;
  console.log(`shared limits (Durable Object leases): p50 ${round(sl.leased_limits.p50)} ms vs ${round(sl.no_limits.p50)} ms without limits (added ${round(sl.added_median_ms)} ms); ${sl.object_calls} object calls for ${sl.requests} requests: one per ${sl.requests_per_object_call === null ? "-" : round(sl.requests_per_object_call, 0)}`);
}
console.log("\nbudgets:");
for (const b of results.budgets) console.log(`  ${b.met ? "met " : "MISS"}  ${b.budget}: ${b.value}`);
console.log("the router's share, above the runtime floor:");
for (const b of results.budgets_above_floor) console.log(`  ${b.met ? "met " : "MISS"}  ${b.budget}: ${b.value}`);
console.log("\nissue 19 (floor = a JavaScript Worker that only forwards, same run):");
console.log(`  ${"".padEnd(58)} ${"floor".padStart(8)} ${"router".padStart(8)} ${"above".padStart(8)}  target`);
const cell = (x) => String(x ?? "-").padStart(8);
for (const r of results.issue19) console.log(`  ${r.met === null ? "    " : r.met ? "met " : "MISS"}${r.what.padEnd(54)} ${cell(r.floor)} ${cell(r.router)} ${cell(r.above_floor)}  ${r.target}`);
console.log(`\nJSON: ${OUT}`);
