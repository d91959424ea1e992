// Amazon Bedrock behind the router, end to end with the mock speaking Converse and ConverseStream
// (the AWS event-stream binary framing, with its checksums): requests translated and signed with
// SigV4 (or sent with a Bedrock API key), answers and streams translated back, tools, errors and
// exceptions inside the stream, a corrupt frame, and the Responses door in front.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startMock, startWorker, testRules, chat, userMessage, MOCK_API_KEY, GATEWAY_KEY } from "./harness.mjs";

describe("bedrock provider", () => {
  let mock;
  let worker;
  const claude = "anthropic.claude-3-haiku-20240307-v1:0";
  before(async () => {
    mock = await startMock();
    const base = testRules(mock.url);
    worker = await startWorker({
      secrets: { MOCK_API_KEY, AWS_CREDENTIALS: `${MOCK_API_KEY}:mock-secret-access-key` },
      rules: {
        ...base,
        providers: {
          ...base.providers,
          aws: { kind: "bedrock", base_url: mock.url, region: "us-east-1", api_key_secret: "AWS_CREDENTIALS" },
          awskey: { kind: "bedrock", base_url: mock.url, region: "us-east-1", api_key_secret: "MOCK_API_KEY" },
        },
        models: {
          ...base.models,
          haiku: { provider: "aws", model: claude, price_per_mtok: { input: 0.25, output: 1.25 } },
          keyed: { provider: "awskey", model: claude },
          throttled: { provider: "aws", model: "x+status=429" },
          exception: { provider: "aws", model: "x+stream_error" },
          corrupt: { provider: "aws", model: "x+malformed+chunks=6" },
          cut: { provider: "aws", model: "x+cut=3+chunks=8" },
        },
        routes: [
          { name: "throttled", when: { "metadata.case": "throttled" }, then: { fallback: ["throttled", "fast"] } },
          { name: "exception", when: { "metadata.case": "exception" }, then: { fallback: ["exception", "fast"] } },
          { name: "corrupt", when: { "metadata.case": "corrupt" }, then: { fallback: ["corrupt", "fast"] } },
          { name: "cut", when: { "metadata.case": "cut" }, then: "cut" },
        ],
        default: "haiku",
      },
    });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  const lastSent = async () => (await mock.requests()).at(-1);

  test("a chat request becomes a signed Converse request; the answer comes back in OpenAI's shape", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", max_tokens: 100, temperature: 0.3, stop: "END",
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }] });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-provider"), "aws");
    const body = await r.json();
    assert.equal(body.choices[0].message.content, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(body.usage.completion_tokens, 5);
    const sent = await lastSent();
    assert.equal(sent.path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    assert.deepEqual(sent.body, {
      system: [{ text: "Be brief." }],
      messages: [{ role: "user", content: [{ text: "Hello there" }] }],
      inferenceConfig: { maxTokens: 100, temperature: 0.3, stopSequences: ["END"] },
    });
    assert.match(sent.headers.authorization,
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${MOCK_API_KEY}/\\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$`));
    assert.match(sent.headers["x-amz-date"], /^\d{8}T\d{6}Z$/);
    const point = await worker.dataPointFor(r);
    assert.equal(point.blobs[3], "aws");
    assert.ok(point.doubles[7] > 0, "cost");
  });

  test("a Bedrock API key is sent as a bearer token instead", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "keyed", messages: userMessage() });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal((await lastSent()).headers.authorization, `Bearer ${MOCK_API_KEY}`);
  });

  test("ConverseStream's binary frames become OpenAI chunks, with the usage and [DONE]", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, stream_options: { include_usage: true }, messages: userMessage() });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /text\/event-stream/);
    const events = (await r.text()).split("\n\n").filter(Boolean).map((e) => e.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
    assert.ok((await lastSent()).path.endsWith("/converse-stream"));
  });

  test("tools translate both ways, whole and streamed", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", description: "weather", parameters: { type: "object" } } }];
    const r = await chat(worker.url, { model: "auto", tools, tool_choice: "auto", messages: userMessage("weather in Paris?") });
    const body = await r.json();
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(body.choices[0].message.tool_calls[0], { id: "tooluse_mock_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } });
    assert.deepEqual((await lastSent()).body.toolConfig, { tools: [{ toolSpec: { name: "get_weather", description: "weather", inputSchema: { json: { type: "object" } } } }], toolChoice: { auto: {} } });
    const s = await chat(worker.url, { model: "auto", tools, stream: true, messages: userMessage("weather in Paris?") });
    const chunks = (await s.text()).split("\n\n").filter((e) => e && !e.includes("[DONE]")).map((e) => JSON.parse(e.slice(6)));
    const args = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []).map((t) => t.function?.arguments ?? "").join("");
    assert.equal(args, '{"city":"Paris"}');
    // The tool's result goes back as a toolResult block.
    await chat(worker.url, { model: "auto", tools, messages: [
      { role: "user", content: "weather?" },
      { role: "assistant", content: null, tool_calls: body.choices[0].message.tool_calls },
      { role: "tool", tool_call_id: "tooluse_mock_1", content: "sunny" },
    ] });
    const sent = (await lastSent()).body.messages;
    assert.deepEqual(sent.at(-1), { role: "user", content: [{ toolResult: { toolUseId: "tooluse_mock_1", content: [{ text: "sunny" }] } }] });
  });

  test("throttling (429) and an exception frame before any content fall back", async () => {
    for (const c of ["throttled", "exception"]) {
      const r = await chat(worker.url, { model: "auto", stream: c === "exception", metadata: { case: c }, messages: userMessage() });
      assert.equal(r.status, 200, c);
      assert.equal(r.headers.get("x-router-target"), "fast", c);
      await r.text();
    }
  });

  test("a frame that fails its checksum before any content falls back; a stream cut after content is interrupted", async () => {
    const corrupt = await chat(worker.url, { model: "auto", stream: true, metadata: { case: "corrupt" }, messages: userMessage() });
    assert.equal(corrupt.headers.get("x-router-target"), "fast");
    assert.ok((await corrupt.text()).endsWith("data: [DONE]\n\n"));
    const cut = await chat(worker.url, { model: "auto", stream: true, metadata: { case: "cut" }, messages: userMessage() });
    const text = await cut.text();
    assert.ok(text.includes("tok0") && text.includes("stream_interrupted"), text);
    assert.ok(!text.includes("[DONE]"));
  });

  test("the Responses door in front of Bedrock, streamed", async () => {
    const client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: `${worker.url}/v1`, maxRetries: 0 });
    const stream = await client.responses.create({ model: "haiku", input: "Hi", stream: true });
    let last;
    for await (const e of stream) last = e;
    assert.equal(last.type, "response.completed");
    assert.equal(last.response.output[0].content[0].text, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(last.response.usage.output_tokens, 5);
  });
});
