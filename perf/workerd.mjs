// The Worker in workerd alone, for the perf harness: a workerd config serving the built bundle,
// without Miniflare's entry worker in front (Miniflare routes every request through a JavaScript
// worker of its own, which adds its CPU and a hop to each request and to each streamed chunk).
//
// What Miniflare provides is replaced by the smallest equivalent: local KV by a service holding
// the rules and key records in memory (the KV protocol workerd speaks to a namespace's service:
// GET /<url-encoded key>), the analytics binding by a wrapped binding that discards points, and
// `request.cf` by a blob injected into every request (the edge sends one in production).
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { GATEWAY_KEY, ROOT, sha256 } from "../tests/e2e/harness.mjs";

const WORKERD = path.join(ROOT, "node_modules", "workerd", "bin", "workerd");

/** The `request.cf` the edge would send: the usual fields of a request from one city. */
const CF = {
  colo: "DFW", country: "US", city: "Dallas", continent: "NA", region: "Texas", regionCode: "TX",
  postalCode: "75201", metroCode: "623", latitude: "32.78", longitude: "-96.80", timezone: "America/Chicago",
  asn: 7922, asOrganization: "Comcast Cable", clientTcpRtt: 12, httpProtocol: "HTTP/2", tlsVersion: "TLSv1.3",
  tlsCipher: "AEAD-AES128-GCM-SHA256", requestPriority: "", edgeRequestKeepAliveStatus: 1, clientAcceptEncoding: "gzip, br",
  verifiedBotCategory: "",
};

const KV_SERVICE = `let entries = null;
export default { async fetch(req, env) {
  entries ??= JSON.parse(env.ENTRIES);
  const url = new URL(req.url);
  if (req.method !== "GET") return new Response("read-only", { status: 405 });
  const key = decodeURIComponent(url.pathname.slice(1));
  return key in entries ? new Response(entries[key]) : new Response("not found", { status: 404 });
} };`;

const DISCARD = `export default function () { return { writeDataPoint() {} }; }`;

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A process's CPU time in ms (utime + stime from /proc, 100 ticks a second): the whole process,
 * or (`mainThread`) only the thread that runs the isolate and its I/O, without V8's background
 * threads (compilation, concurrent marking).
 */
export const cpuMs = (pid, mainThread = false) => {
  const f = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};

const text = (s) => JSON.stringify(s); // a capnp text literal is a JSON string

/**
 * Start workerd serving either the router's bundle (`bundle: true`, with `entryModules` first:
 * perf/meter.mjs) or one JavaScript module (`script`). `kv` ({key: text}) is the RULES namespace;
 * `vars` are the Worker's text bindings; `objects` binds the Durable Objects as wrangler.toml does
 * (in memory). Resolves with { url, pid, stop() }.
 */
export async function startWorkerd({ bundle = false, script = null, entryModules = [], kv = {}, vars = {}, objects = false, assets = true }) {
  const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-workerd-"));
  const port = await freePort();
  const modules = [];
  const file = (name, contents) => {
    writeFileSync(path.join(dir, name), contents);
    return name;
  };
  if (bundle) {
    for (const m of entryModules) {
      const name = path.basename(m.path);
      modules.push(`(name = ${text(name)}, esModule = embed ${text(file(name, m.contents))})`);
    }
    // embed reads files beside the config only.
    for (const f of ["index.js", "index_bg.wasm"]) copyFileSync(path.join(ROOT, "build", f), path.join(dir, f));
    modules.push(`(name = "index.js", esModule = embed "index.js")`);
    modules.push(`(name = "index_bg.wasm", wasm = embed "index_bg.wasm")`);
  } else {
    modules.push(`(name = "worker.mjs", esModule = embed ${text(file("worker.mjs", script))})`);
  }
  const bindings = Object.entries(vars).map(([name, value]) => `(name = ${text(name)}, text = ${text(String(value))})`);
  if (bundle) {
    bindings.push(`(name = "RULES", kvNamespace = "kv")`);
    bindings.push(`(name = "ANALYTICS", wrapped = (moduleName = "perf:discard"))`);
    // Static assets (wrangler.toml [assets]): build/assets/ (scripts/build-wasm.sh), read by path.
    if (assets) bindings.push(`(name = "ASSETS", service = "assets")`);
  }
  const classes = bundle && objects ? ["KeyLimiter", "TargetHealth"] : [];
  if (classes.length) {
    bindings.push(`(name = "LIMITS", durableObjectNamespace = "KeyLimiter")`);
    bindings.push(`(name = "HEALTH", durableObjectNamespace = "TargetHealth")`);
  }
  const objectConfig = classes.length
    ? `durableObjectNamespaces = [ ${classes.map((c) => `(className = ${text(c)}, uniqueKey = ${text(`taskrouter-${c}`)}, enableSql = true)`).join(", ")} ],
      durableObjectStorage = (inMemory = void),`
    : "";
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = (
      modules = [ ${modules.join(",\n        ")} ],
      compatibilityDate = "2026-04-26",
      bindings = [ ${bindings.join(",\n        ")} ],
      ${objectConfig}
    )),
    (name = "kv", worker = (
      modules = [ (name = "kv.mjs", esModule = embed ${text(file("kv.mjs", KV_SERVICE))}) ],
      compatibilityDate = "2026-04-26",
      bindings = [ (name = "ENTRIES", text = ${text(JSON.stringify(kv))}) ],
    )),
    (name = "assets", disk = (path = ${text(path.join(ROOT, "build", "assets"))}, writable = false)),
    # The mock provider listens on 127.0.0.1, which the default internet service refuses.
    (name = "internet", network = (allow = ["public", "local"])),
  ],
  sockets = [ (name = "http", address = ${text(`127.0.0.1:${port}`)}, service = "main",
               http = (cfBlobHeader = "cf-blob", injectRequestHeaders = [ (name = "cf-blob", value = ${text(JSON.stringify(CF))}) ])) ],
  extensions = [ (modules = [ (name = "perf:discard", internal = true, esModule = ${text(DISCARD)}) ]) ],
);
`;
  file("config.capnp", config);
  const child = spawn(WORKERD, ["serve", path.join(dir, "config.capnp"), "--experimental"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output = (output + d).slice(-4000)));
  child.stderr.on("data", (d) => (output = (output + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`workerd exited with ${child.exitCode}:\n${output}`);
    }
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`workerd did not answer on ${url}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url, pid: child.pid, stop, output: () => output };
}

/**
 * The router in workerd: `rules` and the test gateway key in KV (and `keys`: {key: record}),
 * wrangler.toml's vars and `vars`; `objects` binds the Durable Objects.
 */
export function startRouter({ rules, vars = {}, entryModules = [], keys = {}, objects = false, assets = true }) {
  const records = Object.fromEntries(Object.entries(keys).map(([k, r]) => [`gateway-key:${sha256(k)}`, JSON.stringify(r)]));
  return startWorkerd({
    bundle: true,
    entryModules,
    objects,
    assets,
    kv: { rules: JSON.stringify(rules), [`gateway-key:${sha256(GATEWAY_KEY)}`]: JSON.stringify({ id: "test-key", name: "perf" }), ...records },
    vars: { RULES_KEY: "rules", CACHE_TTL_SECONDS: "30", MAX_BODY_BYTES: "1048576", MOCK_API_KEY: "unused", ...vars },
  });
}
