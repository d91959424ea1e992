// Streaming pass-through: the provider's SSE reaches the client byte for byte, chunk by chunk as
// produced (not gathered at the end), with the router's headers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage } from "./harness.mjs";

describe("streaming", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      models: {
        fast: { provider: "mock", model: "mock-fast" },
        strong: { provider: "mock", model: "mock-slow+chunks=6+chunk_delay=250", price_per_mtok: { input: 3, output: 15 } },
        lingering: { provider: "mock", model: "mock-linger+linger=3000" },
      },
      routes: [...testRules(mock.url).routes, { name: "linger", when: { "metadata.plan": "linger" }, then: "lingering" }],
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("SSE comes back unchanged, ending in [DONE]", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, messages: userMessage(), stream_options: { include_usage: true } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/event-stream/);
    assert.equal(r.headers.get("x-router-target"), "fast");
    const text = await r.text();
    const events = text.split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")));
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "mock-fast"));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
    const point = await worker.dataPointFor(r);
    assert.equal(point.blobs[7], "yes");
  });

  test("chunks arrive as they are produced, not all at the end", async () => {
    // The mock waits 250 ms between events (6 content chunks, ~2 s in all). A buffering router
    // would deliver everything at once; a streaming one delivers the first content chunk while
    // the provider is still producing the rest.
    const r = await chat(worker.url, { model: "auto", stream: true, messages: userMessage(), metadata: { plan: "pro" } });
    assert.equal(r.headers.get("x-router-target"), "strong");
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    const arrivals = [];
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const piece = decoder.decode(value, { stream: true });
      text += piece;
      for (const m of piece.matchAll(/"content":"(tok\d) "/g)) arrivals.push([m[1], performance.now()]);
    }
    assert.deepEqual(arrivals.map(([t]) => t), ["tok0", "tok1", "tok2", "tok3", "tok4", "tok5"]);
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    const spread = arrivals.at(-1)[1] - arrivals[0][1];
    // Five gaps of 250 ms separate the first and last content chunk at the source.
    assert.ok(spread > 750, `first and last chunk arrived ${spread.toFixed(0)} ms apart: the stream was buffered`);
  });

  test("the answer ends at its last event, though the provider keeps its body open after it", async () => {
    // The mock holds the body open 3 s after [DONE], then sends a comment and ends it. The client
    // gets the whole answer and the end of its stream at once, without the comment, and the
    // request is recorded as complete.
    const started = performance.now();
    const r = await chat(worker.url, { model: "auto", stream: true, messages: userMessage(), metadata: { plan: "linger" } });
    assert.equal(r.headers.get("x-router-target"), "lingering");
    const text = await r.text();
    const took = performance.now() - started;
    assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-80));
    assert.ok(!text.includes("lingered"), "bytes sent after the last event reached the client");
    assert.ok(took < 2500, `the stream ended after ${took.toFixed(0)} ms: it waited for the provider's body to end`);
    const point = await worker.dataPointFor(r);
    assert.equal(point.blobs[5], "ok");
    assert.equal(point.blobs[7], "yes");
  });

  test("a client that leaves mid-stream is recorded as client_disconnected, and what the provider produced is settled and costed", async () => {
    const aborter = new AbortController();
    const r = await chat(worker.url, { model: "auto", stream: true, messages: userMessage(), metadata: { plan: "pro" } }, { signal: aborter.signal });
    assert.equal(r.headers.get("x-router-target"), "strong");
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("tok0")) {
      const { done, value } = await reader.read();
      assert.ok(!done, "the stream ended before its first content");
      text += decoder.decode(value, { stream: true });
    }
    aborter.abort();
    const point = await worker.dataPointFor(r);
    assert.equal(point.blobs[5], "client_disconnected");
    assert.equal(point.blobs[7], "yes");
    // The provider bills what it produced: the tokens sent before the client left are counted,
    // estimated (the usage chunk never came), and costed, so a key's spend limit sees them.
    assert.equal(point.blobs[13], "estimated");
    assert.ok(point.doubles[4] > 0 && point.doubles[5] >= 1, `tokens: ${point.doubles}`);
    assert.ok(point.doubles[7] > 0, `cost: ${point.doubles[7]}`);
  });
});
