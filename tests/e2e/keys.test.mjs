// Gateway keys through the Worker: the routes and tasks a key may use, its request and spend
// limits, revocation, and bring-your-own-key (the caller's Authorization reaches a provider only
// when that provider allows it and the gateway key came in x-router-key).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, MOCK_API_KEY } from "./harness.mjs";

describe("gateway keys", () => {
  let mock;
  let worker;
  const keys = {
    "k-default-only": { id: "default-only", allowed_routes: ["default"] },
    "k-faq-only": { id: "faq-only", allowed_tasks: ["faq"] },
    "k-two-a-minute": { id: "two-a-minute", requests_per_minute: 2 },
    "k-tiny-budget": { id: "tiny-budget", spend_usd_per_day: 0.000001 },
    "k-revoked": { id: "revoked", revoked: true },
    "k-plain": { id: "plain" },
  };
  before(async () => {
    mock = await startMock({ apiKey: null });
    const rules = testRules(mock.url, {
      providers: {
        mock: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
        own: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY", allow_byok: true },
      },
      models: {
        fast: { provider: "mock", model: "mock-fast", price_per_mtok: { input: 0.5, output: 1.5 } },
        strong: { provider: "mock", model: "mock-strong" },
        byok: { provider: "own", model: "mock-own" },
      },
    });
    worker = await startWorker({ rules, keys });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  const code = async (r) => (await r.json()).error?.code;

  test("a key is held to its routes and tasks", async () => {
    assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-default-only" })).status, 200);
    const paid = await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { plan: "pro" } }, { key: "k-default-only" });
    assert.equal(paid.status, 403);
    assert.equal(await code(paid), "key_not_allowed");
    assert.equal((await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { task: "faq" } }, { key: "k-faq-only" })).status, 200);
    const other = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-faq-only" });
    assert.equal(other.status, 403);
  });

  test("request and spend limits answer 429 with retry-after", async () => {
    for (let i = 0; i < 2; i++) {
      assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-two-a-minute" })).status, 200);
    }
    const third = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-two-a-minute" });
    assert.equal(third.status, 429);
    assert.ok(Number(third.headers.get("retry-after")) >= 1);
    assert.equal(await code(third), "key_limit_exceeded");
    assert.equal((await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-tiny-budget" })).status, 200, "the first spends the budget");
    const over = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-tiny-budget" });
    assert.equal(over.status, 429);
    assert.match((await over.json()).error.message, /spent/);
  });

  test("a revoked key is refused", async () => {
    const r = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: "k-revoked" });
    assert.equal(r.status, 401);
  });

  test("bring-your-own-key: only where the provider allows it, never the gateway key", async () => {
    await mock.clear();
    const own = { "x-router-key": "k-plain", authorization: "Bearer sk-callers-own" };
    let r = await chat(worker.url, { model: "byok", messages: userMessage() }, { key: null, headers: own });
    assert.equal(r.status, 200, await r.clone().text());
    r = await chat(worker.url, { model: "fast", messages: userMessage() }, { key: null, headers: own });
    assert.equal(r.status, 200);
    r = await chat(worker.url, { model: "byok", messages: userMessage() }, { key: "k-plain" });
    assert.equal(r.status, 200);
    const sent = (await mock.requests()).map((s) => s.headers.authorization);
    assert.deepEqual(sent, ["Bearer sk-callers-own", `Bearer ${MOCK_API_KEY}`, `Bearer ${MOCK_API_KEY}`]);
  });
});
