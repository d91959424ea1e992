// The Responses API front door (`POST /v1/responses`) end to end with the real openai Node SDK:
// plain and streamed answers, a function tool round trip (whole and streamed), routing by the same
// rules as chat, a provider of another kind behind it, stream breaks, and the stable errors for
// what needs server-side state.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startMock, startWorker, testRules, GATEWAY_KEY } from "./harness.mjs";

describe("the Responses API front door", () => {
  let mock;
  let worker;
  let client;
  before(async () => {
    mock = await startMock();
    const base = testRules(mock.url);
    worker = await startWorker({
      rules: {
        ...base,
        providers: { ...base.providers, claude: { kind: "anthropic", base_url: mock.url, api_key_secret: "MOCK_API_KEY" } },
        models: {
          ...base.models,
          sonnet: { provider: "claude", model: "claude-sonnet", price_per_mtok: { input: 3, output: 15 } },
          cut: { provider: "mock", model: "mock-cut+cut=2+chunks=6" },
          down: { provider: "mock", model: "mock-down+status=503" },
        },
        routes: [
          ...base.routes,
          { name: "claude", when: { "metadata.case": "claude" }, then: "sonnet" },
          { name: "cut", when: { "metadata.case": "cut" }, then: "cut" },
          { name: "fallback", when: { "metadata.case": "fallback" }, then: { fallback: ["down", "fast"] } },
        ],
      },
    });
    client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: `${worker.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  const weather = { type: "function", name: "get_weather", description: "The weather in a city",
                    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };

  test("responses.create: routed by the rules, answered as a Response, recorded with its cost", async () => {
    await mock.clear();
    const { data: r, response } = await client.responses
      .create({ model: "auto", instructions: "Be brief.", input: "Hello there", max_output_tokens: 64, metadata: { plan: "pro" } })
      .withResponse();
    assert.equal(response.headers.get("x-router-rule"), "paid-plans");
    assert.equal(r.object, "response");
    assert.equal(r.status, "completed");
    assert.match(r.id, /^resp_/);
    assert.equal(r.output_text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(r.output[0].type, "message");
    assert.equal(r.instructions, "Be brief.");
    assert.equal(r.max_output_tokens, 64);
    assert.equal(r.store, false);
    assert.equal(r.usage.output_tokens, 5);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + 5);
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/v1/chat/completions");
    assert.equal(sent.body.model, "mock-strong");
    assert.deepEqual(sent.body.messages, [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }]);
    assert.equal(sent.body.max_completion_tokens, 64);
    const point = await worker.dataPointFor(response);
    assert.equal(point.blobs[5], "ok");
    assert.equal(point.blobs[2], "strong");
    assert.equal(point.doubles[5], 5, "output tokens");
    assert.ok(point.doubles[7] > 0, "cost");
  });

  test("streamed: typed events with sequence numbers, text deltas, and the usage in response.completed", async () => {
    const stream = await client.responses.create({ model: "auto", input: "Hello", stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    assert.equal(types[0], "response.created");
    assert.equal(types.at(-1), "response.completed");
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    assert.equal(text, "tok0 tok1 tok2 tok3 tok4 ");
    const done = events.at(-1).response;
    assert.equal(done.status, "completed");
    assert.equal(done.output[0].content[0].text, text);
    assert.equal(done.usage.output_tokens, 5);
    assert.ok(done.usage.input_tokens > 0);
  });

  test("the SDK's stream helper gathers the final response", async () => {
    const stream = client.responses.stream({ model: "auto", input: "Hello" });
    const deltas = [];
    stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.status, "completed");
    assert.equal(final.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(deltas.join(""), "tok0 tok1 tok2 tok3 tok4 ");
  });

  test("a function tool round trip: the call comes back, its output goes in, the answer follows", async () => {
    await mock.clear();
    const input = [{ role: "user", content: "What's the weather in Paris?" }];
    const first = await client.responses.create({ model: "auto", input, tools: [weather] });
    const call = first.output.find((o) => o.type === "function_call");
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, "get_weather");
    assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
    assert.equal(call.call_id, "call_mock_1");
    assert.equal(first.tools[0].name, "get_weather");
    const second = await client.responses.create({
      model: "auto",
      tools: [weather],
      input: [...input, ...first.output, { type: "function_call_output", call_id: call.call_id, output: "sunny, 21 C" }],
    });
    assert.equal(second.output_text, "tok0 tok1 tok2 tok3 tok4 ");
    const sent = (await mock.requests()).at(-1).body;
    assert.deepEqual(sent.messages.slice(1), [
      { role: "assistant", content: null, tool_calls: [{ id: "call_mock_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_mock_1", content: "sunny, 21 C" },
    ]);
    assert.deepEqual(sent.tools, [{ type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: weather.parameters } }]);
  });

  test("a streamed function call: argument deltas, then the item done", async () => {
    const stream = await client.responses.create({ model: "auto", input: "weather in Paris?", tools: [weather], stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    const args = events.filter((e) => e.type === "response.function_call_arguments.delta").map((e) => e.delta).join("");
    assert.equal(args, '{"city":"Paris"}');
    const added = events.find((e) => e.type === "response.output_item.added");
    assert.equal(added.item.type, "function_call");
    assert.equal(added.item.name, "get_weather");
    const done = events.at(-1);
    assert.equal(done.type, "response.completed");
    assert.equal(done.response.output[0].arguments, '{"city":"Paris"}');
  });

  test("a provider of another kind (Anthropic) behind the Responses door, whole and streamed", async () => {
    await mock.clear();
    const r = await client.responses.create({ model: "auto", input: "Hi", instructions: "Be brief.", metadata: { case: "claude" } });
    assert.equal(r.output_text, "tok0 tok1 tok2 tok3 tok4 ");
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/v1/messages");
    assert.equal(sent.body.system, "Be brief.");
    const stream = await client.responses.create({ model: "auto", input: "Hi", metadata: { case: "claude" }, stream: true });
    let last;
    for await (const e of stream) last = e;
    assert.equal(last.type, "response.completed");
    assert.equal(last.response.output_text ?? last.response.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(last.response.usage.output_tokens, 5);
  });

  test("fallback works the same behind this door", async () => {
    const { data: r, response } = await client.responses
      .create({ model: "auto", input: "Hi", metadata: { case: "fallback" } })
      .withResponse();
    assert.equal(r.status, "completed");
    assert.equal(response.headers.get("x-router-fallback"), "yes");
    assert.equal(response.headers.get("x-router-target"), "fast");
  });

  test("a stream that breaks ends with response.failed and an error the SDK raises, never response.completed", async () => {
    const stream = await client.responses.create({ model: "auto", input: "Hi", metadata: { case: "cut" }, stream: true });
    const types = [];
    await assert.rejects(async () => {
      for await (const e of stream) types.push(e.type);
    }, (err) => err instanceof OpenAI.APIError && /broke off/.test(err.message) && err.code === "stream_interrupted");
    assert.ok(types.includes("response.output_text.delta"));
    assert.equal(types.at(-1), "response.failed");
    assert.ok(!types.includes("response.completed"));
  });

  test("what needs stored state, hosted tools and bad input: 400 with stable codes, in OpenAI's error shape", async () => {
    const cases = [
      [{ model: "auto", input: "Hi", previous_response_id: "resp_123" }, 400, "unsupported_parameter"],
      [{ model: "auto", input: "Hi", conversation: "conv_1" }, 400, "unsupported_parameter"],
      [{ model: "auto", input: "Hi", tools: [{ type: "web_search" }] }, 400, "unsupported_parameter"],
      [{ model: "auto", input: [{ type: "item_reference", id: "msg_1" }] }, 400, "unsupported_parameter"],
      [{ model: "auto" }, 400, "invalid_request"],
      [{ input: "Hi" }, 400, "invalid_request"],
      [{ model: "no-such-model", input: "Hi" }, 404, "model_not_found"],
    ];
    for (const [body, status, code] of cases) {
      await assert.rejects(client.responses.create(body), (err) => {
        assert.equal(err.status, status, JSON.stringify(body));
        assert.equal(err.code, code, JSON.stringify(body));
        return true;
      });
    }
    const raw = await fetch(`${worker.url}/v1/responses`, { method: "POST", headers: { authorization: `Bearer ${GATEWAY_KEY}` }, body: "{nope" });
    assert.equal(raw.status, 400);
    assert.equal((await raw.json()).error.code, "invalid_json");
    const wrong = new OpenAI({ apiKey: "tr-wrong", baseURL: `${worker.url}/v1`, maxRetries: 0 });
    await assert.rejects(wrong.responses.create({ model: "auto", input: "Hi" }), (err) => err.status === 401 && err.code === "invalid_api_key");
    await assert.rejects(client.responses.retrieve("resp_123"), (err) => err.status === 404 && err.code === "not_found");
  });
});

describe("the Responses API passed through to OpenAI targets", () => {
  let mock;
  let worker;
  let client;
  before(async () => {
    mock = await startMock();
    const base = testRules(mock.url);
    const gpt = (model) => ({ provider: "oai", model, price_per_mtok: { input: 2, output: 8 } });
    worker = await startWorker({
      rules: {
        ...base,
        providers: {
          ...base.providers,
          oai: { kind: "openai", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
          claude: { kind: "anthropic", base_url: mock.url, api_key_secret: "MOCK_API_KEY" },
        },
        models: {
          ...base.models,
          gpt: gpt("gpt-mock"),
          down: gpt("gpt-down+status=503"),
          failing: gpt("gpt-failing+stream_error"),
          cut: gpt("gpt-cut+cut=6+chunks=8"),
          sonnet: { provider: "claude", model: "claude-sonnet" },
        },
        routes: [
          { name: "down", when: { "metadata.case": "down" }, then: { fallback: ["down", "sonnet"] } },
          { name: "failing", when: { "metadata.case": "failing" }, then: { fallback: ["failing", "sonnet"] } },
          { name: "cut", when: { "metadata.case": "cut" }, then: "cut" },
        ],
        default: "gpt",
      },
    });
    client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: `${worker.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("an OpenAI target gets the Responses request as it came and its Response comes back as it went", async () => {
    await mock.clear();
    const input = [{ role: "user", content: [{ type: "input_text", text: "Hello there" }] }];
    const { data: r, response } = await client.responses
      .create({ model: "auto", instructions: "Be brief.", input, max_output_tokens: 50, metadata: { team: "web" } })
      .withResponse();
    assert.match(r.id, /^resp_mock_/, "the provider's own Response");
    assert.equal(r.output_text, "tok0 tok1 tok2 tok3 tok4 ");
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/v1/responses");
    assert.deepEqual(sent.body, { model: "gpt-mock", instructions: "Be brief.", input, max_output_tokens: 50 });
    const point = await worker.dataPointFor(response);
    assert.equal(point.blobs[2], "gpt");
    assert.equal(point.blobs[13], "reported");
    assert.equal(point.doubles[5], 5, "output tokens from the Response's usage");
    assert.ok(point.doubles[4] > 0 && point.doubles[7] > 0);
  });

  test("streamed, the provider's own events pass through, with their usage recorded", async () => {
    const { data: stream, response } = await client.responses.create({ model: "auto", input: "Hello", stream: true }).withResponse();
    const events = [];
    for await (const e of stream) events.push(e);
    assert.equal(events[0].type, "response.created");
    assert.match(events[0].response.id, /^resp_mock_/);
    assert.equal(events.at(-1).type, "response.completed");
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.equal(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), "tok0 tok1 tok2 tok3 tok4 ");
    const point = await worker.dataPointFor(response);
    assert.equal(point.blobs[5], "ok");
    assert.equal(point.doubles[5], 5);
  });

  test("a failing OpenAI target falls back to another kind, translated, whole and streamed", async () => {
    const { data: r, response } = await client.responses.create({ model: "auto", input: "Hi", metadata: { case: "down" } }).withResponse();
    assert.equal(response.headers.get("x-router-target"), "sonnet");
    assert.equal(r.object, "response");
    assert.equal(r.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    const stream = await client.responses.create({ model: "auto", input: "Hi", metadata: { case: "failing" }, stream: true });
    const types = [];
    let last;
    for await (const e of stream) { types.push(e.type); last = e; }
    assert.equal(last.type, "response.completed");
    assert.equal(last.response.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.ok(!types.includes("error"));
  });

  test("a passed-through stream that breaks ends with response.failed and an error the SDK raises", async () => {
    const stream = await client.responses.create({ model: "auto", input: "Hi", metadata: { case: "cut" }, stream: true });
    const events = [];
    await assert.rejects(async () => {
      for await (const e of stream) events.push(e);
    }, (err) => err instanceof OpenAI.APIError && err.code === "stream_interrupted");
    assert.ok(events.some((e) => e.type === "response.output_text.delta"));
    const failed = events.at(-1);
    assert.equal(failed.type, "response.failed");
    assert.equal(failed.sequence_number, events.at(-2).sequence_number + 1);
    assert.match(failed.response.id, /^resp_mock_/);
  });
});
