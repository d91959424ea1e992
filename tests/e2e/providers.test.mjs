// Providers behind the OpenAI front door, end to end through the Worker with the mock speaking each
// wire format (Anthropic, Azure OpenAI, Gemini): requests translated (system, images, tools,
// max_tokens, headers, URLs), answers and streams translated back, usage and cost, errors normalised.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, MOCK_API_KEY, GATEWAY_KEY } from "./harness.mjs";

describe("anthropic provider", () => {
  let mock;
  let worker;
  const claude = (model, extra = {}) => ({ provider: "claude", model, price_per_mtok: { input: 3, output: 15 }, ...extra });
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      providers: {
        mock: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
        claude: { kind: "anthropic", base_url: mock.url, api_key_secret: "MOCK_API_KEY" },
      },
      models: {
        sonnet: claude("claude-sonnet"),
        limited: claude("claude-limited+status=429+retry_after=4"),
        busy: claude("claude-busy+status=529"),
        huge: claude("claude-huge+context_length"),
        streamerr: claude("claude-streamerr+stream_error"),
        cut: claude("claude-cut+cut=3+chunks=8"),
        fast: { provider: "mock", model: "mock-fast" },
      },
      routes: [
        { name: "busy", when: { "metadata.case": "busy" }, then: { fallback: ["busy", "fast"] } },
        { name: "streamerr", when: { "metadata.case": "streamerr" }, then: { fallback: ["streamerr", "fast"] } },
      ],
      default: "sonnet",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  const lastSent = async () => (await mock.requests()).at(-1);

  test("a chat request becomes an Anthropic request and the answer comes back in OpenAI's shape", async () => {
    await mock.clear();
    const r = await chat(worker.url, {
      model: "auto", temperature: 0.3, stop: "END",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
      ],
    });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-provider"), "claude");
    const body = await r.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].message.content, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(body.usage.completion_tokens, 5);
    const sent = await lastSent();
    assert.equal(sent.path, "/v1/messages");
    assert.equal(sent.headers["x-api-key"], MOCK_API_KEY);
    assert.equal(sent.headers["anthropic-version"], "2023-06-01");
    assert.equal(sent.headers.authorization, undefined);
    assert.equal(sent.body.system, "Be brief.");
    assert.equal(sent.body.max_tokens, 4096);
    assert.deepEqual(sent.body.stop_sequences, ["END"]);
    assert.deepEqual(sent.body.messages[0].content[1], { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } });
    const p = (await worker.waitForDataPoints(1)).at(-1);
    assert.deepEqual([p.blobs[3], p.blobs[4], p.blobs[13]], ["claude", "claude-sonnet", "reported"]);
    const cost = (body.usage.prompt_tokens * 3 + body.usage.completion_tokens * 15) / 1e6;
    assert.ok(Math.abs(p.doubles[7] - cost) < 1e-12);
  });

  test("tools and tool calls translate both ways", async () => {
    const r = await chat(worker.url, {
      model: "sonnet", tool_choice: "required",
      messages: userMessage("Weather in Paris?"),
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
    });
    const body = await r.json();
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(body.choices[0].message.tool_calls[0], {
      id: "toolu_mock_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    });
    const sent = await lastSent();
    assert.deepEqual(sent.body.tools[0], { name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } });
    assert.deepEqual(sent.body.tool_choice, { type: "any" });
  });

  test("response_format JSON rides a forced tool and comes back as the message content", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "sonnet", messages: userMessage("Where?"),
      response_format: { type: "json_schema", json_schema: { name: "place", schema: { type: "object", properties: { city: { type: "string" } } } } } });
    const body = await r.json();
    assert.deepEqual(JSON.parse(body.choices[0].message.content), { city: "Paris" });
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(body.choices[0].message.tool_calls, undefined);
    const sent = await lastSent();
    assert.deepEqual(sent.body.tool_choice, { type: "tool", name: "router_json_output" });
  });

  test("a streamed answer arrives as OpenAI chunks ending in [DONE], with usage for analytics", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, stream_options: { include_usage: true }, messages: userMessage("12345678") });
    assert.match(r.headers.get("content-type"), /^text\/event-stream/);
    const text = await r.text();
    const frames = text.split("\n\n").filter(Boolean);
    assert.equal(frames.at(-1), "data: [DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.replace(/^data: /, "")));
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(chunks.at(-2).choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
    assert.ok(!text.includes("message_start"), "no Anthropic event reaches the client");
    const p = await worker.dataPointFor(r);
    assert.deepEqual([p.doubles[4], p.doubles[5], p.blobs[13]], [2, 5, "reported"]);
  });

  test("errors are normalised: 429 passes retry-after, 529 falls back, context length is named", async () => {
    const limited = await chat(worker.url, { model: "limited", messages: userMessage() });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "4");
    assert.equal((await limited.json()).error.code, "upstream_rate_limited");
    const busy = await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { case: "busy" } });
    assert.equal(busy.status, 200);
    assert.equal(busy.headers.get("x-router-target"), "fast");
    const huge = await chat(worker.url, { model: "huge", messages: userMessage() });
    assert.equal(huge.status, 400);
    const err = await huge.json();
    assert.equal(err.error.code, "context_length_exceeded");
    assert.doesNotMatch(JSON.stringify(err), /210000/, "the upstream message is not echoed");
  });

  test("an error event opening the stream falls back; a cut stream ends with an error event", async () => {
    const r = await chat(worker.url, { model: "auto", stream: true, messages: userMessage(), metadata: { case: "streamerr" } });
    assert.equal(r.headers.get("x-router-target"), "fast");
    assert.ok((await r.text()).endsWith("data: [DONE]\n\n"));
    const cut = await chat(worker.url, { model: "cut", stream: true, messages: userMessage() });
    const text = await cut.text();
    assert.ok(text.includes('"content":"tok0 "') && !text.includes("[DONE]"));
    assert.match(text.trim().split("\n\n").at(-1), /stream_interrupted/);
  });
});

describe("azure openai provider and /v1/models", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      providers: {
        mock: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
        azure: { kind: "azure_openai", base_url: mock.url, api_key_secret: "MOCK_API_KEY", api_version: "2025-01-01-preview" },
      },
      models: {
        fast: { provider: "mock", model: "mock-fast", context_window: 16384 },
        gpt4o: { provider: "azure", model: "gpt-4o-prod" },
      },
      tasks: { code: { keywords: ["refactor"] } },
      routes: [],
      default: "gpt4o",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("requests go to the deployment URL with api-version and api-key; answers and streams come back", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal((await r.json()).choices[0].message.content, "tok0 tok1 tok2 tok3 tok4 ");
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2025-01-01-preview");
    assert.equal(sent.headers["api-key"], MOCK_API_KEY);
    assert.equal(sent.headers.authorization, undefined);
    const s = await chat(worker.url, { model: "gpt4o", stream: true, messages: userMessage() });
    assert.ok((await s.text()).endsWith("data: [DONE]\n\n"));
  });

  test("GET /v1/models lists auto, the tasks and the models, for key holders only", async () => {
    const r = await fetch(`${worker.url}/v1/models`, { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.object, "list");
    assert.deepEqual(body.data.map((m) => [m.id, m.router_kind]), [["auto", "auto"], ["code", "task"], ["fast", "model"], ["gpt4o", "model"]]);
    assert.equal(body.data.find((m) => m.id === "fast").context_window, 16384);
    assert.equal((await fetch(`${worker.url}/v1/models`)).status, 401);
  });
});

describe("gemini provider", () => {
  let mock;
  let worker;
  const gem = (model, extra = {}) => ({ provider: "google", model, price_per_mtok: { input: 0.3, output: 2.5 }, ...extra });
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      providers: {
        mock: { kind: "openai_compatible", base_url: `${mock.url}/v1`, api_key_secret: "MOCK_API_KEY" },
        google: { kind: "gemini", base_url: mock.url, api_key_secret: "MOCK_API_KEY" },
      },
      models: {
        flash: gem("gemini-flash"),
        blocked: gem("gemini-blocked+safety_block"),
        limited: gem("gemini-limited+status=429"),
        huge: gem("gemini-huge+context_length"),
        fast: { provider: "mock", model: "mock-fast" },
      },
      routes: [{ name: "guarded", when: { "metadata.case": "blocked" }, then: { fallback: ["blocked", "fast"] } }],
      default: "flash",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("generateContent: system, image and tools go in Gemini's shape; the answer comes back in OpenAI's", async () => {
    await mock.clear();
    const r = await chat(worker.url, {
      model: "auto", max_tokens: 100,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Weather here?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
      ],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    });
    assert.equal(r.status, 200, await r.clone().text());
    const body = await r.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].message.content, "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.equal(body.choices[0].message.tool_calls[0].function.name, "get_weather");
    assert.equal(body.usage.completion_tokens, 5);
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/v1beta/models/gemini-flash:generateContent");
    assert.equal(sent.headers["x-goog-api-key"], MOCK_API_KEY);
    assert.deepEqual(sent.body.systemInstruction, { parts: [{ text: "Be brief." }] });
    assert.deepEqual(sent.body.contents[0].parts[1], { inline_data: { mime_type: "image/png", data: "iVBORw0KGgo=" } });
    assert.equal(sent.body.generationConfig.maxOutputTokens, 100);
    assert.equal(sent.body.tools[0].functionDeclarations[0].name, "get_weather");
  });

  test("streamGenerateContent: OpenAI chunks, [DONE], usage for analytics", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "flash", stream: true, messages: userMessage("12345678") });
    const text = await r.text();
    const frames = text.split("\n\n").filter(Boolean);
    assert.equal(frames.at(-1), "data: [DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.replace(/^data: /, "")));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    assert.equal((await mock.requests())[0].path, "/v1beta/models/gemini-flash:streamGenerateContent?alt=sse");
    const p = await worker.dataPointFor(r);
    assert.deepEqual([p.doubles[4], p.doubles[5], p.blobs[13]], [2, 5, "reported"]);
  });

  test("a safety block is an error that falls back; quota and context errors are named", async () => {
    const guarded = await chat(worker.url, { model: "auto", messages: userMessage(), metadata: { case: "blocked" } });
    assert.equal(guarded.status, 200);
    assert.equal(guarded.headers.get("x-router-target"), "fast");
    const blocked = await chat(worker.url, { model: "blocked", messages: userMessage() });
    assert.equal(blocked.status, 400);
    assert.equal((await blocked.json()).error.code, "content_filtered");
    const limited = await chat(worker.url, { model: "limited", messages: userMessage() });
    assert.equal((await limited.json()).error.code, "upstream_rate_limited");
    const huge = await chat(worker.url, { model: "huge", messages: userMessage() });
    const err = await huge.json();
    assert.equal(err.error.code, "context_length_exceeded");
    assert.doesNotMatch(JSON.stringify(err), /9000/);
  });
});

describe("the Anthropic front door (POST /v1/messages)", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const base = testRules(mock.url);
    worker = await startWorker({
      rules: {
        ...base,
        providers: { ...base.providers, claude: { kind: "anthropic", base_url: mock.url, api_key_secret: "MOCK_API_KEY" } },
        models: { ...base.models, sonnet: { provider: "claude", model: "claude-sonnet" } },
      },
    });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  // As the Anthropic SDK sends it.
  const messages = (body, key = GATEWAY_KEY, headers = {}) =>
    fetch(`${worker.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...(key ? { "x-api-key": key } : {}), ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  test("a Messages request is routed and answered in the Messages shape", async () => {
    await mock.clear();
    const r = await messages({ model: "auto", max_tokens: 64, system: "Be brief.", messages: [{ role: "user", content: "Hello" }] },
                             GATEWAY_KEY, { "x-router-metadata": JSON.stringify({ plan: "pro" }) });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-rule"), "paid-plans");
    const msg = await r.json();
    assert.equal(msg.type, "message");
    assert.equal(msg.role, "assistant");
    assert.deepEqual(msg.content, [{ type: "text", text: "tok0 tok1 tok2 tok3 tok4 " }]);
    assert.equal(msg.stop_reason, "end_turn");
    assert.equal(msg.usage.output_tokens, 5);
    const [sent] = await mock.requests();
    assert.equal(sent.body.model, "mock-strong");
    assert.deepEqual(sent.body.messages[0], { role: "system", content: "Be brief." });
    assert.equal(sent.body.max_tokens, 64);
  });

  test("streams come as Anthropic events", async () => {
    const r = await messages({ model: "auto", max_tokens: 64, stream: true, messages: [{ role: "user", content: "Hi" }] });
    assert.equal(r.status, 200);
    const text = await r.text();
    const names = text.split("\n").filter((l) => l.startsWith("event: ")).map((l) => l.slice(7));
    assert.equal(names[0], "message_start");
    assert.equal(names.at(-1), "message_stop");
    assert.ok(names.includes("content_block_delta") && names.includes("message_delta"));
    assert.ok(!text.includes("[DONE]") && !text.includes("chat.completion.chunk"));
    const deltas = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    assert.equal(deltas.filter((d) => d.type === "content_block_delta").map((d) => d.delta.text).join(""), "tok0 tok1 tok2 tok3 tok4 ");
    assert.equal(deltas.find((d) => d.type === "message_delta").usage.output_tokens, 5);
  });

  for (const model of ["auto", "sonnet"]) test(`a stream reports the same input tokens as the same request unstreamed, and so does its data point (${model})`, async () => {
    const body = { model, max_tokens: 64, messages: [{ role: "user", content: "Count the words in this sentence, please." }] };
    const plain = await messages(body);
    assert.equal(plain.status, 200);
    const want = (await plain.json()).usage.input_tokens;
    assert.ok(want > 0, "the mock reports input tokens");
    const r = await messages({ ...body, stream: true });
    const events = (await r.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    // What the Anthropic SDK's final message adds up: message_start's usage, then message_delta's.
    const usage = { ...events.find((e) => e.type === "message_start").message.usage };
    Object.assign(usage, events.find((e) => e.type === "message_delta").usage);
    assert.equal(usage.input_tokens, want);
    assert.equal(usage.output_tokens, 5);
    const point = await worker.dataPointFor(r);
    assert.equal(point.doubles[4], want, "the data point's input tokens");
  });

  test("errors come in the Messages API's shape", async () => {
    const noKey = await messages({ model: "auto", max_tokens: 5, messages: [] }, null);
    assert.equal(noKey.status, 401);
    assert.deepEqual((await noKey.json()).error.type, "authentication_error");
    const bad = await messages("{nope");
    assert.equal(bad.status, 400);
    const body = await bad.json();
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "invalid_request_error");
    const unknown = await messages({ model: "claude-9", max_tokens: 5, messages: [{ role: "user", content: "x" }] });
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.type, "not_found_error");
  });
});
