// The routing engine through the Worker: keyword/regex classification, task aliases, overrides,
// fallback across targets (and when it must not fall back), load balancing, and explain.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY } from "./harness.mjs";

describe("routing engine", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      models: {
        fast: { provider: "mock", model: "mock-fast", price_per_mtok: { input: 0.5, output: 1.5 } },
        strong: { provider: "mock", model: "mock-strong", price_per_mtok: { input: 3, output: 15 } },
        broken: { provider: "mock", model: "mock-broken+status=500" },
        picky: { provider: "mock", model: "mock-picky+status=400" },
        limited: { provider: "mock", model: "mock-limited+status=429+retry_after=9" },
      },
      tasks: {
        code_generation: { keywords: ["refactor", "stack trace"], regex: ["```"] },
        translation: { regex: ["(?i)\\btranslate\\b.*\\b(into|to)\\b"] },
      },
      routes: [
        { name: "code", when: { task: "code_generation" }, then: { fallback: ["broken", { model: "strong", override: { max_tokens: 77 } }] } },
        { name: "translate", when: { task: "translation" }, then: { fallback: ["picky", "fast"] } },
        { name: "limited", when: { "metadata.tier": "limited" }, then: { fallback: ["limited", "limited"], on_status: [503] } },
        { name: "spread", when: { "metadata.tier": "spread" }, then: { loadbalance: [{ target: "fast", weight: 1 }, { target: "strong", weight: 1 }] } },
      ],
      default: "fast",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("keywords classify the task; a failing first target falls back to the next, with its overrides", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage("Please refactor this function"), max_tokens: 5 });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-task"), "code_generation");
    assert.equal(r.headers.get("x-router-rule"), "code");
    assert.equal(r.headers.get("x-router-target"), "strong");
    assert.equal(r.headers.get("x-router-attempts"), "2");
    assert.equal(r.headers.get("x-router-fallback"), "yes");
    const sent = await mock.requests();
    assert.deepEqual(sent.map((s) => s.body.model), ["mock-broken+status=500", "mock-strong"]);
    assert.equal(sent[0].body.max_tokens, 5);
    assert.equal(sent[1].body.max_tokens, 77, "the target's override wins over the caller's value");
    const p = await worker.dataPointFor(r);
    assert.deepEqual([p.blobs[0], p.blobs[1], p.blobs[2], p.blobs[6]], ["code_generation", "code", "strong", "yes"]);
    assert.equal(p.doubles[3], 2, "attempts");
    assert.equal(p.doubles[8], 1, "classifier score");
  });

  test("a request the provider rejects as invalid does not fall back", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage("Translate this into German: hello") });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, "upstream_rejected_request");
    assert.equal(r.headers.get("x-router-attempts"), "1");
    assert.equal((await mock.requests()).length, 1);
  });

  test("fallback limited to listed statuses stops on others, passing on retry-after", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { tier: "limited" } });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("retry-after"), "9");
    assert.equal((await mock.requests()).length, 1, "429 is not in on_status [503]: no second attempt");
  });

  test("a task can be requested as the model name; errors carry the router's headers too", async () => {
    const r = await chat(worker.url, { model: "translation", messages: userMessage("hello") });
    assert.equal(r.status, 400, "the translate route's first target rejects everything");
    assert.equal(r.headers.get("x-router-task"), "translation");
    assert.equal(r.headers.get("x-router-rule"), "translate");
    assert.equal(r.headers.get("x-router-target"), "picky");
    assert.equal(r.headers.get("x-router-model"), "mock-picky+status=400");
  });

  test("load balancing spreads requests over its targets", async () => {
    const seen = new Set();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const r = await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { tier: "spread" } });
      assert.equal(r.status, 200);
      seen.add(r.headers.get("x-router-target"));
    }
    assert.deepEqual([...seen].sort(), ["fast", "strong"]);
  });

  test("explain shows facts, scores, routes checked and the plan, and calls no provider", async () => {
    await mock.clear();
    const body = { model: "auto", messages: userMessage("refactor this ```js\nx()\n```"), metadata: { plan: "free" } };
    const r = await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    const e = await r.json();
    assert.equal(e.object, "router.explanation");
    assert.equal(e.rule, "code");
    assert.equal(e.facts.task, "code_generation");
    assert.equal(e.facts.has_code, true);
    assert.equal(e.classification.scores[0].score, 2);
    assert.deepEqual(e.classification.scores[0].evidence, ['keyword "refactor"', "regex ```"]);
    assert.deepEqual(e.routes_checked.map((c) => [c.route, c.matched]), [["code", true]]);
    assert.deepEqual(e.plan.map((a) => a.target), ["broken", "strong"]);
    assert.equal(e.plan[1].overrides.max_tokens, 77);
    assert.equal((await mock.requests()).length, 0);
    const unauth = await fetch(`${worker.url}/v1/router/explain`, { method: "POST", body: JSON.stringify(body) });
    assert.equal(unauth.status, 401);
  });
});
