// Bad input and failing providers: every case gets an OpenAI-shaped JSON error with a stable code
// and the right status, upstream bodies never reach the client, and each chat request still
// writes its data point.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import http from "node:http";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY, MOCK_API_KEY, ROOT } from "./harness.mjs";

/** POST with the test key on a new connection, closed after; the answer as a fetch `Response`. */
function postAlone(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent: false,
      headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}`, "content-length": Buffer.byteLength(body) } },
      (res) => {
        const parts = [];
        res.on("data", (d) => parts.push(d));
        res.on("end", () => resolve(new Response(Buffer.concat(parts), { status: res.statusCode, headers: { "content-type": res.headers["content-type"] ?? "" } })));
      });
    req.on("error", reject);
    req.end(body);
  });
}

async function expectError(response, status, code) {
  assert.equal(response.status, status);
  assert.match(response.headers.get("content-type"), /^application\/json/);
  const body = await response.json();
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, "string");
  assert.equal(typeof body.error.type, "string");
  return body;
}

describe("bad input", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    worker = await startWorker({ rules: testRules(mock.url), vars: { MAX_BODY_BYTES: "4096" } });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("gateway key missing or wrong: 401", async () => {
    await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }, { key: null }), 401, "missing_api_key");
    await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "nope" }), 401, "invalid_api_key");
    const wrongScheme = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: null, headers: { authorization: "Basic eDp5" } });
    await expectError(wrongScheme, 401, "missing_api_key");
  });

  test("invalid JSON and invalid shapes: 400", async () => {
    await expectError(await chat(worker.url, "{not json"), 400, "invalid_json");
    await expectError(await chat(worker.url, ""), 400, "invalid_json");
    await expectError(await chat(worker.url, { messages: userMessage() }), 400, "invalid_request");
    await expectError(await chat(worker.url, { model: "auto", messages: [] }), 400, "invalid_request");
    const badMeta = await chat(worker.url, { model: "auto", messages: userMessage() }, { headers: { "x-router-metadata": "{oops" } });
    await expectError(badMeta, 400, "invalid_metadata");
  });

  test("a body over the size limit: 413", async () => {
    const big = { model: "auto", messages: userMessage("x".repeat(5000)) };
    // On a connection of its own: the Worker answers without reading the body, after which the
    // local runtime may drop the connection, and a later request reusing it would fail.
    await expectError(await postAlone(`${worker.url}/v1/chat/completions`, JSON.stringify(big)), 413, "request_too_large");
  });

  test("unknown paths and methods", async () => {
    await expectError(await fetch(`${worker.url}/v2/nothing`), 404, "not_found");
    await expectError(await fetch(`${worker.url}/v1/chat/completions`), 405, "method_not_allowed");
  });

  test("each rejected chat request still writes one data point naming its error", async () => {
    const points = await worker.waitForDataPoints(8);
    const outcomes = points.map((p) => p.blobs[5]);
    for (const code of ["missing_api_key", "invalid_api_key", "invalid_json", "invalid_request", "invalid_metadata", "request_too_large"]) {
      assert.ok(outcomes.includes(code), `${code} in ${outcomes}`);
    }
    assert.ok(points.filter((p) => p.blobs[5] === "missing_api_key").every((p) => p.indexes[0] === "anonymous"));
  });
});

describe("rules problems: 503 naming the problem", () => {
  test("no rules in KV", async () => {
    const worker = await startWorker({});
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_missing");
      assert.match(body.error.message, /no rules in KV key "rules"/);
    } finally {
      await worker.stop();
    }
  });

  test("invalid rules, every error with its path", async () => {
    const rules = testRules("http://127.0.0.1:9", { routes: [{ name: "r", when: { x: { $regexp: "a" } }, then: "strongg" }] });
    const worker = await startWorker({ rules });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_invalid");
      assert.match(body.error.message, /routes\[0\]\.when\.x\.\$regexp: unknown operator \$regexp/);
      assert.match(body.error.message, /routes\[0\]\.then: unknown model "strongg"/);
    } finally {
      await worker.stop();
    }
  });

  test("rules that are not JSON", async () => {
    const worker = await startWorker({ rules: "{version: 1" });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_invalid");
      assert.match(body.error.message, /not valid JSON/);
    } finally {
      await worker.stop();
    }
  });
});

describe("failing providers", () => {
  let mock;
  let worker;
  const withModel = (model) => testRules(mock.url, { models: { fast: { provider: "mock", model } }, routes: [] });
  before(async () => {
    mock = await startMock();
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  const table = [
    ["mock-x+status=429+retry_after=7", 429, "upstream_rate_limited", "7"],
    ["mock-x+status=500", 502, "upstream_error", null],
    ["mock-x+status=503", 502, "upstream_error", null],
    ["mock-x+status=400", 400, "upstream_rejected_request", null],
    ["mock-x+malformed", 502, "upstream_error", null],
    ["mock-x+status=401", 502, "upstream_auth_failed", null],
    ["mock-x+status=403", 502, "upstream_auth_failed", null],
    ["mock-x+status=404", 400, "upstream_rejected_request", null],
    ["mock-x+context_length", 400, "context_length_exceeded", null],
  ];
  for (const [model, status, code, retryAfter] of table) {
    test(`${model} -> ${status} ${code}`, async () => {
      await worker?.stop();
      worker = await startWorker({ rules: withModel(model) });
      const r = await chat(worker.url, { model: "auto", messages: userMessage() });
      assert.equal(r.headers.get("retry-after"), retryAfter);
      const body = await expectError(r, status, code);
      assert.doesNotMatch(JSON.stringify(body), /upstream detail|mock provider answered/, "upstream bodies are never echoed");
      const [point] = await worker.waitForDataPoints(1);
      assert.equal(point.blobs[5], code);
      assert.equal(point.doubles[10], status);
    });
  }

  test("a provider that cannot be reached -> 502 upstream_unreachable", async () => {
    await worker?.stop();
    worker = await startWorker({ rules: testRules("http://127.0.0.1:9") });
    await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 502, "upstream_unreachable");
  });

  test("a provider whose key secret is not set fails clearly, without calling it", async () => {
    await worker?.stop();
    await mock.clear();
    worker = await startWorker({ rules: testRules(mock.url), secrets: {} });
    const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 500, "provider_key_missing");
    assert.match(body.error.message, /MOCK_API_KEY/);
    assert.equal((await mock.requests()).length, 0);
  });

  test("prompt and completion text never reach a data point or a log line", async () => {
    await worker?.stop();
    worker = await startWorker({ rules: testRules(mock.url) });
    const secretPrompt = "PROMPT-CANARY-7f3a9 please summarise";
    for (const stream of [false, true]) {
      const r = await chat(worker.url, { model: "auto", stream, messages: userMessage(secretPrompt) });
      assert.match(await r.text(), /tok0/);
    }
    const recorded = JSON.stringify(await worker.waitForDataPoints(2)) + worker.logs.join("\n");
    assert.ok(worker.logs.some((l) => l.includes('"event":"request"')), "the request log lines are there");
    assert.ok(!recorded.includes("PROMPT-CANARY"), "prompt text leaked");
    assert.ok(!recorded.includes("tok0"), "completion text leaked");
  });

  test("no secret value appears in any response, header, log line or data point", async () => {
    await worker?.stop();
    worker = await startWorker({ rules: testRules(mock.url) });
    const responses = [
      await chat(worker.url, { model: "auto", messages: userMessage() }),
      await chat(worker.url, { model: "auto", stream: true, messages: userMessage() }),
      await chat(worker.url, "{bad"),
    ];
    let seen = "";
    for (const r of responses) seen += JSON.stringify([...r.headers]) + (await r.text());
    seen += JSON.stringify(await worker.waitForDataPoints(3)) + worker.logs.join("\n");
    assert.ok(!seen.includes(MOCK_API_KEY));
  });
});

describe("misconfigured Worker", () => {
  test("no static assets: rules that use the task model are refused saying why; rules without it still route", async () => {
    const mock = await startMock();
    const withModel = testRules(mock.url, { classifier: {} });
    const worker = await startWorker({ rules: withModel, assets: false });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_invalid");
      assert.match(body.error.message, /classifier\.model/);
      assert.match(body.error.message, /no static assets binding ASSETS/);
      assert.ok(worker.logs.some((l) => l.includes("task model: the Worker has no static assets binding ASSETS")), worker.logs.join("\n"));
      // Nothing is cached from a document that failed: the next request reads KV again.
      await worker.kv.put("rules", JSON.stringify(testRules(mock.url)));
      assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() })).status, 200);
    } finally {
      await worker.stop();
      await mock.stop();
    }
  });

  test("static assets without the lexicon: rules that use the task model are refused naming it", async () => {
    const mock = await startMock();
    const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-assets-"));
    copyFileSync(path.join(ROOT, "build", "assets", "tasks-v2.trcls"), path.join(dir, "tasks-v2.trcls"));
    const worker = await startWorker({ rules: testRules(mock.url, { classifier: {} }), assets: dir });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_invalid");
      assert.match(body.error.message, /classifier\.model/);
      assert.match(body.error.message, /reads the lexicon of task words.*\/lexicon\.trlx is not among the Worker's static assets/);
      assert.ok(worker.logs.some((l) => l.includes("task model: /lexicon.trlx is not among")), worker.logs.join("\n"));
    } finally {
      await worker.stop();
      await mock.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a lexicon index that is not one (the text, say, where the index belongs): refused naming it", async () => {
    const mock = await startMock();
    const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-assets-"));
    copyFileSync(path.join(ROOT, "build", "assets", "tasks-v2.trcls"), path.join(dir, "tasks-v2.trcls"));
    writeFileSync(path.join(dir, "lexicon.trlx"), "summarise\ten\tsummar*\n");
    const worker = await startWorker({ rules: testRules(mock.url, { classifier: {} }), assets: dir });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_invalid");
      assert.match(body.error.message, /the lexicon \(\/lexicon\.trlx in the Worker's static assets\): not a lexicon index \(no TRLX header\)/);
    } finally {
      await worker.stop();
      await mock.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rules that do not use the task model never read its files; rules that do, read them when they arrive", async () => {
    const mock = await startMock();
    // A broken model and no lexicon: a Worker whose rules do not use them must not notice.
    const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-assets-"));
    writeFileSync(path.join(dir, "tasks-v2.trcls"), "not a model");
    const worker = await startWorker({ rules: testRules(mock.url), assets: dir, vars: { CACHE_TTL_SECONDS: "1" } });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() })).status, 200);
      assert.ok(!worker.logs.some((l) => l.includes("task model")), worker.logs.join("\n"));
      // New rules that turn the model on: the files are read then, and what is wrong is said;
      // the last good rules keep serving.
      await worker.kv.put("rules", JSON.stringify(testRules(mock.url, { classifier: {} })));
      await new Promise((r) => setTimeout(r, 1100));
      const res = await chat(worker.url, { model: "auto", messages: userMessage() });
      assert.equal(res.status, 200);
      await res.text();
      assert.ok(worker.logs.some((l) => l.includes("task model: /lexicon.trlx is not among")), worker.logs.join("\n"));
      assert.ok(worker.logs.some((l) => l.includes("the rules in KV key") && l.includes("classifier.model")), worker.logs.join("\n"));
    } finally {
      await worker.stop();
      await mock.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("no KV binding: 503 rules_unavailable naming the binding, for chat and the models list", async () => {
    const worker = await startWorker({ kvBinding: false });
    try {
      const body = await expectError(await chat(worker.url, { model: "auto", messages: userMessage() }), 503, "rules_unavailable");
      assert.match(body.error.message, /no KV binding named RULES/);
      await expectError(await fetch(`${worker.url}/v1/models`), 503, "rules_unavailable");
    } finally {
      await worker.stop();
    }
  });
});
