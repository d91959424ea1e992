// Workers AI behind the router, through the `AI` binding (bound here to a double that answers as
// the binding does): chat whole and streamed, tool calls, embeddings, the binding's errors as
// statuses that fall back, a broken stream, the Responses door in front, and a Worker without the
// binding.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY } from "./harness.mjs";

const rulesFor = (mockUrl) => {
  const base = testRules(mockUrl);
  return {
    ...base,
    providers: { ...base.providers, cf: { kind: "workers_ai" } },
    models: {
      ...base.models,
      llama: { provider: "cf", model: "@cf/meta/llama-3.1-8b-instruct", price_per_mtok: { input: 0.28, output: 0.83 } },
      busy: { provider: "cf", model: "@cf/meta/llama-3.1-8b-instruct+error=3040" },
      gone: { provider: "cf", model: "@cf/nope+error=5007" },
      cut: { provider: "cf", model: "@cf/meta/llama-3.1-8b-instruct+cut" },
      bge: { provider: "cf", model: "@cf/baai/bge-base-en-v1.5", embeddings: { dimensions: 8 } },
    },
    routes: [
      { name: "busy", when: { "metadata.case": "busy" }, then: { fallback: ["busy", "fast"] } },
      { name: "gone", when: { "metadata.case": "gone" }, then: { fallback: ["gone", "llama"] } },
      { name: "cut", when: { "metadata.case": "cut" }, then: "cut" },
    ],
    default: "llama",
  };
};

describe("workers_ai provider", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    worker = await startWorker({ rules: rulesFor(mock.url) });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("a chat request runs the model through the binding and comes back as a chat completion", async () => {
    const r = await chat(worker.url, { model: "auto", max_tokens: 64, temperature: 0.1,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: [{ type: "text", text: "Hello there" }] }] });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-provider"), "cf");
    const body = await r.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].message.content, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(body.usage.completion_tokens, 5);
    const sent = (await worker.aiCalls()).at(-1);
    assert.equal(sent.model, "@cf/meta/llama-3.1-8b-instruct");
    assert.deepEqual(sent.inputs, { max_tokens: 64, temperature: 0.1,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }] });
    const point = await worker.dataPointFor(r);
    assert.equal(point.blobs[3], "cf");
    assert.equal(point.blobs[13], "reported");
    assert.ok(point.doubles[7] > 0, "cost");
  });

  test("streamed: OpenAI chunks, the usage when asked, [DONE]", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, stream_options: { include_usage: true }, messages: userMessage() });
    assert.equal(r.status, 200);
    const text = await r.text();
    const events = text.split("\n\n").filter(Boolean).map((e) => e.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(chunks.at(-2).choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
  });

  test("tools: the call comes back in OpenAI's shape, whole and streamed", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const r = await chat(worker.url, { model: "auto", tools, messages: userMessage("weather?") });
    const body = await r.json();
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(body.choices[0].message.tool_calls[0].function, { name: "get_weather", arguments: '{"city":"Paris"}' });
    const s = await chat(worker.url, { model: "auto", tools, stream: true, messages: userMessage("weather?") });
    const text = await s.text();
    assert.ok(text.includes('"finish_reason":"tool_calls"'), text);
    assert.ok(text.includes('"name":"get_weather"'), text);
  });

  test("the binding's errors are statuses: out of capacity (3040) falls back, no such model (5007) moves on", async () => {
    const busy = await chat(worker.url, { model: "auto", metadata: { case: "busy" }, messages: userMessage() });
    assert.equal(busy.status, 200);
    assert.equal(busy.headers.get("x-router-target"), "fast");
    assert.equal(busy.headers.get("x-router-fallback"), "yes");
    const gone = await chat(worker.url, { model: "auto", metadata: { case: "gone" }, messages: userMessage() });
    assert.equal(gone.status, 200);
    assert.equal(gone.headers.get("x-router-target"), "llama");
    const only = await chat(worker.url, { model: "busy", messages: userMessage() });
    assert.equal(only.status, 429);
    assert.equal((await only.json()).error.code, "upstream_rate_limited");
  });

  test("a stream that breaks ends with the router's error event", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, metadata: { case: "cut" }, messages: userMessage() });
    const text = await r.text();
    assert.ok(text.includes("stream_interrupted"), text);
    assert.ok(!text.includes("[DONE]"));
  });

  test("embeddings and the Responses door run through the binding too", async () => {
    const client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: `${worker.url}/v1`, maxRetries: 0 });
    const e = await client.embeddings.create({ model: "bge", input: ["one", "two"], encoding_format: "float" });
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0].embedding.length, 8);
    assert.deepEqual((await worker.aiCalls()).at(-1), { model: "@cf/baai/bge-base-en-v1.5", inputs: { text: ["one", "two"] } });
    const resp = await client.responses.create({ model: "auto", input: "Hi" });
    assert.equal(resp.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(resp.usage.output_tokens, 5);
  });
});

describe("workers_ai without the AI binding", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    worker = await startWorker({ rules: rulesFor(mock.url), ai: false });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("the target fails as misconfigured and says what to bind; fallback still serves", async () => {
    const r = await chat(worker.url, { model: "llama", messages: userMessage() });
    assert.equal(r.status, 500);
    const err = (await r.json()).error;
    assert.equal(err.code, "provider_key_missing");
    assert.match(err.message, /AI binding/);
    const fb = await chat(worker.url, { model: "auto", metadata: { case: "busy" }, messages: userMessage() });
    assert.equal(fb.status, 200);
    assert.equal(fb.headers.get("x-router-target"), "fast");
  });
});
