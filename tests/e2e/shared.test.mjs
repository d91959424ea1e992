// Limits and target health across the edge: two instances of the built Worker (two isolates)
// share one KV namespace and one Durable Object namespace per class, as two locations of a
// deployment would. A key's per-minute and spend caps hold across both within the overshoot
// docs/operations.md states; a target found down by one instance is skipped by the other within
// the health TTL; an unreachable object fails each limit open or closed; and a deployment without
// the objects counts per isolate and says so.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY } from "./harness.mjs";

const MINUTE = 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe("limits and health shared by two instances", () => {
  let mock;
  let worker;
  const keys = {
    [GATEWAY_KEY]: { id: "test-key" },
    "k-ten-a-minute": { id: "ten-a-minute", requests_per_minute: 10 },
    "k-capped": { id: "capped", spend_usd_per_day: 0.0002 },
  };
  before(async () => {
    mock = await startMock({ apiKey: null });
    const rules = testRules(mock.url, {
      models: {
        fast: { provider: "mock", model: "mock-fast", price_per_mtok: { input: 1, output: 2 } },
        strong: { provider: "mock", model: "mock-strong", price_per_mtok: { input: 1, output: 2 } },
        flaky: { provider: "mock", model: "mock-flaky" },
      },
      routes: [{ name: "flaky-first", when: { "metadata.route": "flaky" }, then: { fallback: ["flaky", "strong"] } }],
      defaults: { cooldown: { after_failures: 2, cooldown_ms: 60000 } },
    });
    worker = await startWorker({ rules, keys, second: true, vars: { HEALTH_TTL_SECONDS: "0" } });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("both instances say the limits are shared", async () => {
    for (const url of [worker.url, worker.urlB]) {
      const health = await (await fetch(`${url}/healthz`)).json();
      assert.equal(health.limits, "durable_objects");
    }
  });

  test("a per-minute cap holds across both instances", async () => {
    const started = Date.now();
    let served = 0;
    for (let i = 0; i < 30; i++) {
      const r = await chat(i % 2 ? worker.urlB : worker.url, { model: "auto", messages: userMessage() }, { key: "k-ten-a-minute" });
      if (r.status === 200) served++;
      else {
        assert.equal(r.status, 429);
        assert.equal((await r.json()).error.code, "key_limit_exceeded");
      }
    }
    // At most 10 a minute, plus one lease (ceil(0.1 x 10) = 1) per instance carried over when the
    // run crosses into another minute (docs/operations.md).
    const minutes = Math.floor(Date.now() / MINUTE) - Math.floor(started / MINUTE) + 1;
    assert.ok(served >= 10, `served ${served}`);
    assert.ok(served <= 10 * minutes + (minutes > 1 ? 2 : 0), `served ${served} in ${minutes} minute(s)`);
    const points = (await worker.waitForDataPoints(30)).filter((p) => p.blobs[12] === "ten-a-minute");
    const decisions = new Set(points.map((p) => p.blobs[16]));
    assert.ok(decisions.has("limited"), [...decisions].join());
    assert.ok(decisions.has("lease") || decisions.has("renewed"), [...decisions].join());
  });

  test("a spend cap holds across both instances within what is in flight", async () => {
    const costs = [];
    for (let i = 0; i < 40; i++) {
      const r = await chat(i % 2 ? worker.urlB : worker.url, { model: "auto", messages: userMessage("spend a little") }, { key: "k-capped" });
      if (r.status === 429) {
        assert.match((await r.json()).error.message, /spent/);
        continue;
      }
      assert.equal(r.status, 200);
      costs.push((await worker.dataPointFor(r)).doubles[7]);
    }
    const spent = costs.reduce((a, b) => a + b, 0);
    const most = Math.max(...costs);
    // Sequential requests: at most one in flight per instance when its slice runs out.
    assert.ok(spent >= 0.0002 - most, `spent ${spent}`);
    assert.ok(spent <= 0.0002 + 2 * most + 1e-12, `spent ${spent}, each at most ${most}`);
    assert.ok(costs.length < 40, "refused once the cap is reached");
  });

  test("a target failing in one instance is skipped by the other", async () => {
    await mock.script("mock-flaky", Array(10).fill("status=503"));
    const flaky = { headers: { "x-router-metadata": JSON.stringify({ route: "flaky" }) } };
    // Instance A: two failures on `flaky`; each is reported to its object after the answer.
    for (let i = 0; i < 2; i++) {
      const r = await chat(worker.url, { model: "auto", messages: userMessage() }, flaky);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-router-target"), "strong");
    }
    // Instance B has seen no failure of its own: its first request still tries `flaky` and reads
    // the object afterwards; once it has, it skips `flaky`.
    const first = await chat(worker.urlB, { model: "auto", messages: userMessage() }, flaky);
    assert.equal(first.headers.get("x-router-attempts"), "2");
    await mock.clear();
    let skipped;
    for (let i = 0; i < 20 && !skipped; i++) {
      await sleep(50);
      const r = await chat(worker.urlB, { model: "auto", messages: userMessage() }, flaky);
      assert.equal(r.status, 200);
      if (r.headers.get("x-router-attempts") === "1") skipped = r;
    }
    assert.ok(skipped, "instance B skipped the target instance A found down");
    assert.equal(skipped.headers.get("x-router-target"), "strong");
    assert.equal(skipped.headers.get("x-router-fallback"), "yes");
  });
});

describe("unreachable objects and deployments without them", () => {
  let mock;
  const keys = {
    "k-spend": { id: "spend", spend_usd_per_day: 5 },
    "k-rpm": { id: "rpm", requests_per_minute: 100 },
  };
  before(async () => {
    mock = await startMock({ apiKey: null });
  });
  after(async () => {
    await mock?.stop();
  });

  test("an unreachable object fails spend closed and requests open by default", async () => {
    const worker = await startWorker({ rules: testRules(mock.url), keys, objects: "broken" });
    try {
      const spend = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-spend" });
      assert.equal(spend.status, 503);
      assert.equal((await spend.json()).error.code, "limits_unavailable");
      const rpm = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-rpm" });
      assert.equal(rpm.status, 200);
      assert.equal((await worker.dataPointFor(rpm)).blobs[16], "unreachable_open");
      const refused = (await worker.waitForDataPoints(2)).find((p) => p.blobs[12] === "spend");
      assert.deepEqual([refused.blobs[5], refused.blobs[16]], ["limits_unavailable", "unreachable_closed"]);
    } finally {
      await worker.stop();
    }
  });

  test("the settings turn each limit open or closed", async () => {
    const vars = { SPEND_LIMIT_WHEN_UNREACHABLE: "open", RATE_LIMIT_WHEN_UNREACHABLE: "closed" };
    const worker = await startWorker({ rules: testRules(mock.url), keys, objects: "broken", vars });
    try {
      assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-spend" })).status, 200);
      const rpm = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-rpm" });
      assert.equal(rpm.status, 503);
      assert.equal((await rpm.json()).error.code, "limits_unavailable");
    } finally {
      await worker.stop();
    }
  });

  test("without the bindings each isolate counts on its own, and says so", async () => {
    const worker = await startWorker({ rules: testRules(mock.url), keys: { "k-two": { id: "two", requests_per_minute: 2 } }, objects: "none", second: true });
    try {
      const health = await (await fetch(`${worker.url}/healthz`)).json();
      assert.equal(health.limits, "per_isolate");
      let served = 0;
      for (let i = 0; i < 6; i++) {
        const r = await chat(i % 2 ? worker.urlB : worker.url, { model: "auto", messages: userMessage() }, { key: "k-two" });
        if (r.status === 200) served++;
      }
      // Two a minute in each isolate: what the shared objects exist to prevent.
      assert.ok(served >= 3, `served ${served}`);
      const points = await worker.waitForDataPoints(6);
      assert.ok(points.every((p) => p.blobs[16] === "isolate"));
      assert.ok(worker.logs.some((l) => l.includes("no Durable Object bindings")), "logged once per isolate");
    } finally {
      await worker.stop();
    }
  });
});
