// Routing through the Worker: metadata chooses the target, named models, the provider call, the
// response headers, the data point, and rules changes in KV taking effect without a restart.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY, MOCK_API_KEY } from "./harness.mjs";


// The settings of limits shared across the edge, as the Worker defaults them (docs/operations.md).
const SHARED_DEFAULTS = {
  lease_fraction: 0.1,
  rate_limit_when_unreachable: "open",
  spend_limit_when_unreachable: "closed",
  health_ttl_seconds: 5,
  object_timeout_ms: 1000,
};
describe("routing", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    worker = await startWorker({ rules: testRules(mock.url), vars: { CACHE_TTL_SECONDS: "1" } });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("GET /healthz answers without a key, with the effective settings", async () => {
    const r = await fetch(`${worker.url}/healthz`);
    assert.equal(r.status, 200);
    const { object_calls: calls, ...health } = await r.json();
    assert.deepEqual(health, {
      status: "ok",
      settings: { rules_key: "rules", cache_ttl_seconds: 1, max_body_bytes: 1048576, request_log: "on", ...SHARED_DEFAULTS },
      limits: "durable_objects",
    });
    assert.equal(typeof calls, "number");
  });

  test("vars that cannot be used are logged once and shown by /healthz, with what is used instead", async () => {
    const odd = await startWorker({ rules: testRules(mock.url), vars: { CACHE_TTL_SECONDS: "soon", MAX_BODY_BYTES: "1MB" } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${odd.url}/healthz`)).status, 200);
      const health = await (await fetch(`${odd.url}/healthz`)).json();
      assert.deepEqual(health.settings, { rules_key: "rules", cache_ttl_seconds: 30, max_body_bytes: 1048576, request_log: "on", ...SHARED_DEFAULTS });
      assert.deepEqual(health.problems, [
        'CACHE_TTL_SECONDS "soon" is not a number of seconds from 0 to 86400; using 30',
        'MAX_BODY_BYTES "1MB" is not a whole number of bytes from 1 to 104857600; using 1048576',
      ]);
      assert.ok(!JSON.stringify(health).includes(MOCK_API_KEY), "no secrets");
      const warned = odd.logs.filter((l) => l.includes("settings: CACHE_TTL_SECONDS"));
      assert.equal(warned.length, 1, `logged once per isolate: ${odd.logs.join("\n")}`);
    } finally {
      await odd.stop();
    }
  });

  test("metadata in the header routes to the strong target, its absence to the default", async () => {
    const table = [
      [{ "x-router-metadata": JSON.stringify({ plan: "pro" }) }, undefined, "paid-plans", "strong", "mock-strong"],
      [{}, { plan: "team" }, "paid-plans", "strong", "mock-strong"],
      [{ "x-router-metadata": JSON.stringify({ plan: "free" }) }, undefined, "default", "fast", "mock-fast"],
      [{}, undefined, "default", "fast", "mock-fast"],
    ];
    for (const [headers, metadata, rule, target, model] of table) {
      await mock.clear();
      const body = { model: "auto", messages: userMessage(), ...(metadata ? { metadata } : {}) };
      const r = await chat(worker.url, body, { headers });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get("x-router-rule"), rule);
      assert.equal(r.headers.get("x-router-target"), target);
      assert.equal(r.headers.get("x-router-provider"), "mock");
      assert.equal(r.headers.get("x-router-model"), model);
      assert.equal(r.headers.get("x-router-rules-version"), "1");
      assert.match(r.headers.get("x-router-request-id"), /^[0-9a-f]{16}$/);
      const answer = await r.json();
      assert.equal(answer.object, "chat.completion");
      assert.equal(answer.model, model, "the provider's answer comes back unchanged");
      const sent = await mock.requests();
      assert.equal(sent.length, 1);
      assert.equal(sent[0].body.model, model);
      assert.equal(sent[0].body.metadata, undefined, "routing metadata is not forwarded");
    }
  });

  test("the provider gets its key from the secret, never the caller's key, and the rest of the body", async () => {
    await mock.clear();
    const body = { model: "auto", messages: userMessage(), temperature: 0.3, seed: 42, x_vendor_field: { a: 1 } };
    const r = await chat(worker.url, body);
    assert.equal(r.status, 200);
    const [sent] = await mock.requests();
    assert.equal(sent.headers.authorization, `Bearer ${MOCK_API_KEY}`);
    assert.ok(!JSON.stringify(sent).includes(GATEWAY_KEY), "the gateway key never reaches the provider");
    assert.deepEqual(sent.body, { ...body, model: "mock-fast" });
  });

  test("a model of the rules can be named directly; an unknown one is 404", async () => {
    const r = await chat(worker.url, { model: "strong", messages: userMessage() });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-router-rule"), "explicit");
    assert.equal(r.headers.get("x-router-model"), "mock-strong");
    const bad = await chat(worker.url, { model: "gpt-9", messages: userMessage() });
    assert.equal(bad.status, 404);
    const err = await bad.json();
    assert.equal(err.error.code, "model_not_found");
    assert.match(err.error.message, /auto, fast, strong/);
  });

  test("one data point per request, with the expected fields and cost", async () => {
    const before = (await worker.dataPoints()).length;
    const r = await chat(worker.url, { model: "auto", messages: userMessage("12345678"), metadata: { plan: "pro", task: "faq" } });
    assert.equal(r.status, 200);
    const requestId = r.headers.get("x-router-request-id");
    const answer = await r.json();
    const points = await worker.waitForDataPoints(before + 1);
    const p = points.find((x) => x.blobs[9] === requestId);
    assert.ok(p, "a data point for this request id");
    assert.deepEqual(p.indexes, ["test-key"]);
    const [task, rule, target, provider, model, outcome, fallback, stream, version, id, , , keyId, basis] = p.blobs;
    assert.deepEqual(
      [task, rule, target, provider, model, outcome, fallback, stream, version, id, keyId, basis],
      ["faq", "paid-plans", "strong", "mock", "mock-strong", "ok", "no", "no", "1", requestId, "test-key", "reported"],
    );
    const [totalMs, upstreamMs, ttfbMs, attempts, inTok, outTok, cached, cost, , promptBytes, status] = p.doubles;
    assert.equal(attempts, 1);
    assert.equal(status, 200);
    assert.equal(inTok, answer.usage.prompt_tokens);
    assert.equal(outTok, answer.usage.completion_tokens);
    assert.equal(cached, 0);
    // strong: $3 in, $15 out per million tokens.
    const want = (answer.usage.prompt_tokens * 3 + answer.usage.completion_tokens * 15) / 1e6;
    assert.ok(Math.abs(cost - want) < 1e-12, `cost ${cost} != ${want}`);
    assert.ok(totalMs >= upstreamMs && upstreamMs >= ttfbMs && ttfbMs >= 0);
    assert.ok(promptBytes > 0);
    assert.equal(points.filter((x) => x.blobs[9] === requestId).length, 1, "exactly one point");
  });

  test("a rules update in KV takes effect after the cache TTL, without a restart", async () => {
    const first = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(first.headers.get("x-router-target"), "fast");
    const updated = testRules(mock.url, { version: 2, default: "strong" });
    await worker.kv.put("rules", JSON.stringify(updated));
    let r;
    const deadline = Date.now() + 10_000;
    do {
      await new Promise((res) => setTimeout(res, 250));
      r = await chat(worker.url, { model: "auto", messages: userMessage() });
    } while (r.headers.get("x-router-rules-version") !== "2" && Date.now() < deadline);
    assert.equal(r.headers.get("x-router-rules-version"), "2");
    assert.equal(r.headers.get("x-router-target"), "strong");
  });

  test("invalid rules in KV keep the last good version serving, and say so", async () => {
    const good = testRules(mock.url, { version: 3 });
    await worker.kv.put("rules", JSON.stringify(good));
    const deadline = Date.now() + 10_000;
    let r;
    do {
      await new Promise((res) => setTimeout(res, 250));
      r = await chat(worker.url, { model: "auto", messages: userMessage() });
    } while (r.headers.get("x-router-rules-version") !== "3" && Date.now() < deadline);
    assert.equal(r.headers.get("x-router-rules-version"), "3");
    await worker.kv.put("rules", JSON.stringify({ ...good, version: 4, default: "nope" }));
    let stale;
    do {
      await new Promise((res) => setTimeout(res, 250));
      stale = await chat(worker.url, { model: "auto", messages: userMessage() });
    } while (stale.headers.get("x-router-rules-status") !== "stale" && Date.now() < deadline + 5000);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get("x-router-rules-status"), "stale");
    assert.equal(stale.headers.get("x-router-rules-version"), "3");
    const models = await fetch(`${worker.url}/v1/models`, { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
    assert.equal(models.status, 200);
    assert.equal(models.headers.get("x-router-rules-status"), "stale", "the models list says so too");
    assert.equal(models.headers.get("x-router-rules-version"), "3");
    const warning = worker.logs.find((l) => l.includes('"rules_stale"'));
    assert.ok(warning, "a log line says the rules are stale");
    assert.match(warning, /default: unknown model \\"nope\\"/);
  });
});
