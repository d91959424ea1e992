// The fault matrix, end to end through the Worker with the mock provider. Each case asserts what
// the client sees, what the mock received (how many calls, to which model), and the data point.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY } from "./harness.mjs";

const model = (id, extra = {}) => ({ provider: "mock", model: id, ...extra });

describe("resilience", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      models: {
        good: model("mock-good", { context_window: 200000, price_per_mtok: { input: 1, output: 2 } }),
        flaky: model("mock-flaky"),
        down: model("mock-down+status=500"),
        busy: model("mock-busy+status=503"),
        hang: model("mock-hang+delay=3000"),
        refused: { provider: "closed", model: "nothing" },
        garbled: model("mock-garbled+malformed"),
        streamerr: model("mock-streamerr+stream_error"),
        emptystream: model("mock-emptystream+empty_stream"),
        cut: model("mock-cut+cut=2+chunks=6"),
        slowstart: model("mock-slowstart+chunks=3+stall_after=0+stall_ms=3000"),
        stall: model("mock-stall+chunks=4+stall_after=2+stall_ms=3000"),
        small: model("mock-small+context_length", { context_window: 4096 }),
        tiny: model("mock-tiny", { context_window: 64 }),
        picky: model("mock-picky+status=400"),
        quiet: model("mock-quiet+no_usage", { price_per_mtok: { input: 1, output: 2 } }),
      },
      providers: {
        mock: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
        closed: { kind: "openai_compatible", base_url: "http://127.0.0.1:9/v1" },
      },
      routes: [
        { name: "r-retry", when: { "metadata.case": "retry" }, then: { model: "flaky", retry: { attempts: 2, backoff_ms: 50 } } },
        { name: "r-500", when: { "metadata.case": "500" }, then: { fallback: [{ model: "down", retry: { attempts: 1, backoff_ms: 20 } }, "good"] } },
        { name: "r-503", when: { "metadata.case": "503" }, then: { fallback: ["busy", "good"] } },
        { name: "r-hang", when: { "metadata.case": "hang" }, then: { fallback: [{ model: "hang", timeout_ms: 400 }, "good"] } },
        { name: "r-refused", when: { "metadata.case": "refused" }, then: { fallback: ["refused", "good"] } },
        { name: "r-garbled", when: { "metadata.case": "garbled" }, then: { fallback: ["garbled", "good"] } },
        { name: "r-streamerr", when: { "metadata.case": "streamerr" }, then: { fallback: ["streamerr", "good"] } },
        { name: "r-empty", when: { "metadata.case": "empty" }, then: { fallback: ["emptystream", "good"] } },
        { name: "r-cut", when: { "metadata.case": "cut" }, then: { fallback: ["cut", "good"] } },
        { name: "r-slowstart", when: { "metadata.case": "slowstart" }, then: { fallback: [{ model: "slowstart", timeout_ms: 400 }, "good"] } },
        { name: "r-stall", when: { "metadata.case": "stall" }, then: { fallback: [{ model: "stall", timeout_ms: 400 }, "good"] } },
        { name: "r-ctx", when: { "metadata.case": "ctx" }, then: { fallback: ["tiny", "small", "good"] } },
        { name: "r-400", when: { "metadata.case": "400" }, then: { fallback: ["picky", "good"] } },
        { name: "r-all", when: { "metadata.case": "all" }, then: { fallback: ["down", "busy", "refused"] } },
      ],
      default: "good",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  const ask = (kase, extra = {}) => chat(worker.url, { model: "auto", messages: userMessage(), metadata: { case: kase }, ...extra });
  const calls = async () => (await mock.requests()).map((r) => r.body.model);
  const pointFor = (r) => worker.dataPointFor(r);
  const served = async (r, target, attempts, fallback) => {
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-target"), target);
    assert.equal(r.headers.get("x-router-attempts"), String(attempts));
    assert.equal(r.headers.get("x-router-fallback"), fallback);
    const p = await pointFor(r);
    assert.deepEqual([p.blobs[2], p.blobs[5], p.blobs[6], p.doubles[3]], [target, "ok", fallback, attempts]);
  };

  test("429 with Retry-After, then success on the retry", async () => {
    await mock.clear();
    await mock.script("mock-flaky", ["status=429+retry_after=1", "ok"]);
    const t0 = performance.now();
    const r = await ask("retry");
    await served(r, "flaky", 2, "no");
    assert.ok(performance.now() - t0 >= 900, "the provider's Retry-After (1 s) was waited for");
    assert.deepEqual(await calls(), ["mock-flaky", "mock-flaky"]);
  });

  test("500 repeated: retried, then the next target", async () => {
    await mock.clear();
    await served(await ask("500"), "good", 3, "yes");
    assert.deepEqual(await calls(), ["mock-down+status=500", "mock-down+status=500", "mock-good"]);
  });

  test("503 falls back", async () => {
    await mock.clear();
    await served(await ask("503"), "good", 2, "yes");
    assert.deepEqual(await calls(), ["mock-busy+status=503", "mock-good"]);
  });

  test("a hang past the timeout is aborted and falls back", async () => {
    await mock.clear();
    const t0 = performance.now();
    const r = await ask("hang");
    await served(r, "good", 2, "yes");
    assert.ok(performance.now() - t0 < 2500, "did not wait for the 3 s hang");
    assert.deepEqual(await calls(), ["mock-hang+delay=3000", "mock-good"]);
  });

  test("connection refused falls back", async () => {
    await mock.clear();
    await served(await ask("refused"), "good", 2, "yes");
    assert.deepEqual(await calls(), ["mock-good"]);
  });

  test("200 with a malformed body falls back", async () => {
    await mock.clear();
    await served(await ask("garbled"), "good", 2, "yes");
  });

  test("an error inside a 200 stream, before any content, falls back", async () => {
    await mock.clear();
    const r = await ask("streamerr", { stream: true });
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    assert.ok(!text.includes("error"), "the failed attempt left no trace in the client's stream");
    assert.equal(r.headers.get("x-router-target"), "good");
    assert.deepEqual(await calls(), ["mock-streamerr+stream_error", "mock-good"]);
  });

  test("a stream that ends before any content falls back", async () => {
    await mock.clear();
    const r = await ask("empty", { stream: true });
    assert.equal(r.headers.get("x-router-target"), "good");
    assert.ok((await r.text()).includes("tok0"));
  });

  test("a stream cut midway ends with an error event, never [DONE], and is recorded as an error", async () => {
    await mock.clear();
    const r = await ask("cut", { stream: true });
    assert.equal(r.status, 200, "bytes were committed: no fallback");
    const text = await r.text();
    assert.ok(text.includes('"content":"tok0 "'), text);
    assert.ok(!text.includes("[DONE]"));
    const last = text.trim().split("\n\n").at(-1);
    const err = JSON.parse(last.replace(/^data: /, ""));
    assert.equal(err.error.code, "stream_interrupted");
    assert.deepEqual(await calls(), ["mock-cut+cut=2+chunks=6"], "never falls back once bytes reached the client");
    const p = await pointFor(r);
    assert.equal(p.blobs[5], "stream_interrupted");
  });

  test("a stream that goes quiet before any content is cut at the timeout and falls back", async () => {
    await mock.clear();
    const t0 = performance.now();
    const r = await ask("slowstart", { stream: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-router-target"), "good");
    assert.equal(r.headers.get("x-router-fallback"), "yes");
    assert.ok((await r.text()).endsWith("data: [DONE]\n\n"));
    assert.ok(performance.now() - t0 < 2500, "did not wait for the 3 s pause");
    assert.deepEqual(await calls(), ["mock-slowstart+chunks=3+stall_after=0+stall_ms=3000", "mock-good"]);
  });

  test("a stream that goes quiet midway ends with an error event at the idle timeout", async () => {
    await mock.clear();
    const t0 = performance.now();
    const r = await ask("stall", { stream: true });
    assert.equal(r.status, 200, "bytes were committed: no fallback");
    assert.equal(r.headers.get("x-router-target"), "stall");
    const text = await r.text();
    assert.ok(performance.now() - t0 < 2500, "did not wait for the 3 s pause");
    assert.ok(text.includes('"content":"tok0 "'), text);
    assert.ok(!text.includes("tok1") && !text.includes("[DONE]"), text);
    const err = JSON.parse(text.trim().split("\n\n").at(-1).replace(/^data: /, ""));
    assert.equal(err.error.code, "stream_interrupted");
    const p = await pointFor(r);
    assert.equal(p.blobs[5], "stream_interrupted");
    assert.deepEqual(await calls(), ["mock-stall+chunks=4+stall_after=2+stall_ms=3000"]);
  });

  test("context-length: small windows skipped before any call, a context error moves to a larger window", async () => {
    await mock.clear();
    // ~100 tokens: more than tiny's 64-token window, within small's 4096.
    const r = await ask("ctx", { messages: userMessage("x".repeat(400)) });
    await served(r, "good", 2, "yes");
    assert.deepEqual(await calls(), ["mock-small+context_length", "mock-good"], "tiny (64 tokens) was never called");
    const e = await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      body: JSON.stringify({ model: "auto", messages: userMessage("x".repeat(400)), metadata: { case: "ctx" } }),
    }).then((x) => x.json());
    assert.equal(e.skipped[0].target, "tiny");
    assert.match(e.skipped[0].reason, /context window 64 tokens/);
  });

  test("a 400 must not fall back", async () => {
    await mock.clear();
    const r = await ask("400");
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, "upstream_rejected_request");
    assert.deepEqual(await calls(), ["mock-picky+status=400"]);
  });

  test("every target failing: 502 listing each attempt, no upstream text", async () => {
    await mock.clear();
    const r = await ask("all");
    assert.equal(r.status, 502);
    const body = await r.json();
    assert.equal(body.error.code, "all_targets_failed");
    assert.match(body.error.message, /down: server_error HTTP 500; busy: overloaded HTTP 503; refused: network/);
    assert.doesNotMatch(JSON.stringify(body), /upstream detail/);
    assert.equal(r.headers.get("x-router-attempts"), "3");
    const p = await pointFor(r);
    assert.deepEqual([p.blobs[5], p.blobs[6], p.doubles[3], p.doubles[10]], ["all_targets_failed", "yes", 3, 502]);
  });

  test("a provider that reports no usage: tokens and cost are estimated, and marked so", async () => {
    for (const stream of [false, true]) {
      const r = await chat(worker.url, { model: "quiet", stream, messages: userMessage("x".repeat(40)) });
      await r.text();
      const p = await pointFor(r);
      // ~40 characters of prompt -> 10 tokens; the answer "tok0 tok1 tok2 tok3 tok4 " is 25 characters -> 7.
      assert.deepEqual([p.blobs[13], p.doubles[4], p.doubles[5]], ["estimated", 10, 7], `stream=${stream}`);
      assert.ok(Math.abs(p.doubles[7] - (10 * 1 + 7 * 2) / 1e6) < 1e-12);
    }
  });

  test("a streamed answer's usage and cost come from its final event", async () => {
    const r = await chat(worker.url, { model: "good", stream: true, messages: userMessage("12345678") });
    const text = await r.text();
    assert.ok(!text.includes('"usage"'), "the usage chunk the router asked for is not shown to a client that did not ask");
    const p = await pointFor(r);
    const [inTok, outTok, cost] = [p.doubles[4], p.doubles[5], p.doubles[7]];
    assert.deepEqual([inTok, outTok], [2, 5]);
    assert.ok(Math.abs(cost - (2 * 1 + 5 * 2) / 1e6) < 1e-12, `cost ${cost}`);
    assert.equal(p.blobs[13], "reported");
  });
});
