// End-to-end harness: the built Worker (build/index.js + build/index_bg.wasm) in workerd through
// Miniflare's API, listening on 127.0.0.1, with local KV and an Analytics Engine binding wrapped by
// a tiny recorder worker so tests read back every data point exactly as the Worker wrote it; and
// the mock provider as a child process on 127.0.0.1. Everything a test starts, it stops.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const GATEWAY_KEY = "tr-test-key-1";
export const MOCK_API_KEY = "mock-secret-for-tests";
const TARGET_DIR = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
export const MOCK_BIN = process.env.MOCK_PROVIDER_BIN ?? path.join(TARGET_DIR, "debug", "mock-provider");
export const CLI_BIN = path.join(TARGET_DIR, "debug", "taskrouter");

export const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** Start the mock provider on a free port. */
export async function startMock({ apiKey = MOCK_API_KEY } = {}) {
  const args = ["--port", "0"];
  if (apiKey) args.push("--api-key", apiKey);
  const child = spawn(MOCK_BIN, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, MOCK_API_KEY: "" } });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`mock-provider did not start: ${out}`)), 10_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => reject(new Error(`mock-provider exited with ${code}`)));
  });
  return {
    url,
    /** Every provider call the mock received, oldest first. */
    requests: async () => (await fetch(`${url}/__mock/requests`)).json(),
    clear: async () => void (await fetch(`${url}/__mock/requests`, { method: "DELETE" })),
    script: async (model, behaviors) =>
      void (await fetch(`${url}/__mock/script`, { method: "POST", body: JSON.stringify({ model, behaviors }) })),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    },
  };
}

/** Rules routing to the mock at `mockUrl`: `pro`/`team` plans to strong, everything else to fast. */
export function testRules(mockUrl, overrides = {}) {
  return {
    version: 1,
    providers: {
      mock: { kind: "openai_compatible", base_url: `${mockUrl}/v1`, api_key_secret: "MOCK_API_KEY" },
    },
    models: {
      fast: { provider: "mock", model: "mock-fast", context_window: 16384, price_per_mtok: { input: 0.5, output: 1.5 } },
      strong: { provider: "mock", model: "mock-strong", context_window: 200000, price_per_mtok: { input: 3, output: 15 } },
    },
    routes: [{ name: "paid-plans", when: { "metadata.plan": { $in: ["pro", "team"] } }, then: "strong" }],
    default: "fast",
    ...overrides,
  };
}

// The recorder behind the ANALYTICS binding: keeps each data point in its own KV namespace.
const RECORDER = `
let seq = 0;
export default function (env) {
  return {
    writeDataPoint(point) {
      const key = String(Date.now()).padStart(15, "0") + "-" + String(seq++).padStart(6, "0");
      return env.POINTS.put(key, JSON.stringify(point ?? null)).catch((e) => console.error("recorder: " + e));
    },
  };
}`;

const DISCARD = `export default function () { return { writeDataPoint() {} }; }`;

// The double behind the AI binding (Workers AI), answering as the binding does and keeping each
// call in its own KV namespace: text generation (`{response, tool_calls, usage}`, or a stream of
// `data: {"response": ...}` events, the usage, `[DONE]`), tool calls to the first tool until its
// result comes, embeddings (`{shape, data}`, 8 numbers per text). Model suffixes: `+error=CODE`
// raises the binding's error of that code, `+cut` breaks the stream after two events.
const AI_DOUBLE = `
let seq = 0;
const usage = (p, c) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });
const text = (m) => (typeof m.content === "string" ? m.content : "");
function vector(model, t) {
  let h = 2166136261;
  for (const ch of model + "|" + t) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return Array.from({ length: 8 }, (_, j) => (((h >>> j) ^ (j * 2654435761)) % 2000) / 1000 - 1);
}
export default function (env) {
  return {
    async run(model, inputs) {
      await env.AI_CALLS.put(String(seq++).padStart(6, "0"), JSON.stringify({ model, inputs }));
      const code = (model.match(/\\+error=(\\d+)/) ?? [])[1];
      if (code) throw new Error("AiError: " + code + ": the double fails as asked");
      if (inputs.text !== undefined) {
        const list = Array.isArray(inputs.text) ? inputs.text : [inputs.text];
        return { shape: [list.length, 8], data: list.map((t) => vector(model, t)), pooling: "mean" };
      }
      const messages = inputs.messages ?? [];
      const prompt = Math.max(1, Math.ceil(messages.reduce((n, m) => n + text(m).length, 0) / 4));
      const last = messages.at(-1);
      const tool = inputs.tools?.length && last?.role !== "tool" ? (inputs.tools[0].function?.name ?? inputs.tools[0].name) : null;
      const pieces = ["tok0 ", "tok1 ", "tok2 ", "tok3 ", "tok4 "];
      const call = { name: tool, arguments: { city: "Paris" } };
      if (!inputs.stream) {
        if (tool) return { response: null, tool_calls: [call], usage: usage(prompt, 8) };
        return { response: pieces.join(""), usage: usage(prompt, pieces.length) };
      }
      const events = tool ? [{ tool_calls: [call] }] : pieces.map((p) => ({ response: p, p: "abc" }));
      events.push({ response: "", usage: usage(prompt, tool ? 8 : pieces.length) });
      const enc = new TextEncoder();
      const cut = model.includes("+cut");
      const frames = events.map((e) => "data: " + JSON.stringify(e) + "\\n\\n").concat(["data: [DONE]\\n\\n"]);
      let i = 0;
      // One event per pull, so a cut stream has delivered its first events before it breaks.
      return new ReadableStream({
        pull(c) {
          if (cut && i === 2) { c.error(new Error("the double's stream broke")); return; }
          if (i === frames.length) { c.close(); return; }
          c.enqueue(enc.encode(frames[i++]));
        },
      });
    },
  };
}`;

// Durable Object classes that cannot be reached: every call to them fails (an unreachable object).
const BROKEN_OBJECTS = `
class Down {
  async fetch() {
    throw new Error("this object is down");
  }
}
export class KeyLimiter extends Down {}
export class TargetHealth extends Down {}
export default { fetch: () => new Response("broken objects") };`;

/** The Durable Object bindings of wrangler.toml, from the Worker's own classes (or `scriptName`'s). */
const objectBindings = (scriptName) =>
  scriptName
    ? { LIMITS: { className: "KeyLimiter", scriptName }, HEALTH: { className: "TargetHealth", scriptName } }
    : { LIMITS: "KeyLimiter", HEALTH: "TargetHealth" };

/**
 * Start the Worker. `rules` (object or raw string), `keys` ({key: record}) and `kvEntries`
 * ({key: text}) are seeded into KV;
 * `vars` override wrangler.toml's; `secrets` are the Worker secrets. `objects`: the Durable Object
 * bindings are `"bound"` (as wrangler.toml has them), `"none"` (a deployment without them) or
 * `"broken"` (bound to objects that always fail). `second: true` starts a second instance of the
 * Worker (another isolate) sharing the KV namespace and the objects, at `urlB`.
 */
export async function startWorker({ rules, keys = { [GATEWAY_KEY]: { id: "test-key", name: "tests" } }, kvEntries = {}, cachePersist = undefined, vars = {}, secrets = { MOCK_API_KEY }, recordAnalytics = true, quiet = false, inspectorPort = undefined, kvBinding = true, objects = "bound", second = false, ai = true, assets = true } = {}) {
  const logs = [];
  const collect = (stream) => {
    let buf = "";
    stream.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        logs.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  };
  // An instance of the built Worker; both instances share the KV namespace.
  const worker = (name, extra) => ({
    name,
    modulesRoot: path.join(ROOT, "build"),
    modules: [
      { type: "ESModule", path: path.join(ROOT, "build", "index.js") },
      { type: "CompiledWasm", path: path.join(ROOT, "build", "index_bg.wasm") },
    ],
    compatibilityDate: "2026-04-26",
    // `kvBinding: false` deploys the Worker without its KV namespace (a misconfiguration).
    kvNamespaces: kvBinding ? { RULES: "RULES" } : {},
    bindings: { RULES_KEY: "rules", CACHE_TTL_SECONDS: "30", MAX_BODY_BYTES: "1048576", ...vars, ...secrets },
    wrappedBindings: { ANALYTICS: { scriptName: "ae-recorder" }, ...(ai ? { AI: { scriptName: "ai-double" } } : {}) },
    // Static assets as wrangler.toml has them (build/assets/: the task model and the console),
    // the Worker first for every path; `assets: false` deploys it without (a misconfiguration),
    // a path deploys that directory instead.
    ...(assets ? { assets: { directory: typeof assets === "string" ? assets : path.join(ROOT, "build", "assets"), binding: "ASSETS", routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true } } } : {}),
    ...extra,
  });
  const mf = new Miniflare({
    handleRuntimeStdio: (stdout, stderr) => {
      if (quiet) {
        stdout.resume();
        stderr.resume();
        return;
      }
      collect(stdout);
      collect(stderr);
    },
    host: "127.0.0.1",
    port: 0,
    // A directory here keeps the Cache API's entries across Worker restarts (a new isolate).
    ...(cachePersist ? { cachePersist } : {}),
    // Profiling (perf/profile.mjs) attaches the V8 inspector here.
    ...(inspectorPort ? { inspectorPort } : {}),
    workers: [
      worker("taskrouter", { durableObjects: objects === "bound" ? objectBindings() : objects === "broken" ? objectBindings("broken-objects") : {} }),
      ...(second
        ? [worker("taskrouter-b", { durableObjects: objects === "none" ? {} : objectBindings(objects === "broken" ? "broken-objects" : "taskrouter"), unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] })]
        : []),
      {
        name: "ae-recorder",
        // The platform's writeDataPoint is a cheap fire-and-forget call; benchmarks discard points
        // rather than pay for the test recorder's KV writes.
        modules: [{ type: "ESModule", path: "recorder.mjs", contents: recordAnalytics ? RECORDER : DISCARD }],
        kvNamespaces: ["POINTS"],
      },
      { name: "ai-double", modules: [{ type: "ESModule", path: "ai.mjs", contents: AI_DOUBLE }], kvNamespaces: ["AI_CALLS"] },
      ...(objects === "broken"
        ? [{ name: "broken-objects", modules: [{ type: "ESModule", path: "broken.mjs", contents: BROKEN_OBJECTS }], durableObjects: objectBindings() }]
        : []),
    ],
  });
  let ready;
  try {
    ready = await mf.ready;
  } catch (e) {
    // The runtime's own output says why it did not start.
    throw new Error(`${e.message}\n${logs.join("\n")}`);
  }
  const url = ready.toString().replace(/\/$/, "");
  const urlB = second ? (await mf.unsafeGetDirectURL("taskrouter-b")).toString().replace(/\/$/, "") : undefined;
  const kv = kvBinding ? await mf.getKVNamespace("RULES", "taskrouter") : null;
  const points = await mf.getKVNamespace("POINTS", "ae-recorder");
  const aiCalls = await mf.getKVNamespace("AI_CALLS", "ai-double");
  if (kv) {
    if (rules !== undefined) await kv.put("rules", typeof rules === "string" ? rules : JSON.stringify(rules));
    for (const [key, record] of Object.entries(keys)) {
      await kv.put(`gateway-key:${sha256(key)}`, JSON.stringify(record));
    }
    for (const [key, value] of Object.entries(kvEntries)) await kv.put(key, value);
  }
  return {
    url,
    urlB,
    kv,
    /** Everything the Worker logged, a line each. */
    logs,
    /** The recorder's store of data points (a KV namespace, one key a point). */
    points,
    /** Data points written so far, oldest first: every page of the recorder's KV list. */
    async dataPoints() {
      const names = [];
      let cursor;
      do {
        const page = await points.list(cursor ? { cursor } : {});
        names.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      const out = [];
      for (const name of names.sort()) out.push(JSON.parse(await points.get(name)));
      return out;
    },
    /** The data point of the request `response` answered, waiting for it (written after the response). */
    async dataPointFor(response, timeoutMs = 5000) {
      const id = response.headers.get("x-router-request-id");
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const p = (await this.dataPoints()).find((x) => x.blobs[9] === id);
        if (p) return p;
        if (Date.now() > deadline) throw new Error(`no data point for request ${id}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Wait until at least `n` data points exist (they are written after the response). */
    async waitForDataPoints(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = await this.dataPoints();
        if (got.length >= n || Date.now() > deadline) return got;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** What the AI binding's double was asked, oldest first: `{model, inputs}`. */
    async aiCalls() {
      const page = await aiCalls.list();
      const out = [];
      for (const k of page.keys.map((x) => x.name).sort()) out.push(JSON.parse(await aiCalls.get(k)));
      return out;
    },
    stop: () => mf.dispose(),
  };
}

/** POST a chat request through the Worker. */
export function chat(url, body, { key = GATEWAY_KEY, headers = {}, signal = undefined } = {}) {
  const h = { "content-type": "application/json", ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: h,
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

export const userMessage = (content = "hello there") => [{ role: "user", content }];
