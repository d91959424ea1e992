// `POST /v1/embeddings` end to end with the real openai Node SDK: routed by the embedding model
// named in the rules, served by OpenAI-compatible, Azure and Gemini targets (translated), falling
// back between models of the same dimensions, recorded with tokens and cost, and listed apart in
// `GET /v1/models`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startMock, startWorker, testRules, GATEWAY_KEY } from "./harness.mjs";

describe("embeddings", () => {
  let mock;
  let worker;
  let client;
  before(async () => {
    mock = await startMock();
    const base = testRules(mock.url);
    worker = await startWorker({
      rules: {
        ...base,
        providers: {
          ...base.providers,
          azure: { kind: "azure_openai", base_url: mock.url, api_key_secret: "MOCK_API_KEY" },
          gemini: { kind: "gemini", base_url: mock.url, api_key_secret: "MOCK_API_KEY" },
        },
        models: {
          ...base.models,
          "embed-small": { provider: "mock", model: "mock-embed", price_per_mtok: { input: 0.02, output: 0 },
                           embeddings: { dimensions: 8, fallback: ["embed-azure"] } },
          "embed-azure": { provider: "azure", model: "embed-deployment", embeddings: { dimensions: 8 } },
          "embed-down": { provider: "mock", model: "mock-embed-down+status=503",
                          embeddings: { dimensions: 8, fallback: ["embed-small"] } },
          "embed-gemini": { provider: "gemini", model: "gemini-embedding-001", embeddings: { dimensions: 8 } },
        },
      },
    });
    client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: `${worker.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("embeddings.create: one model of the rules, its vectors, usage and cost recorded", async () => {
    await mock.clear();
    const { data: r, response } = await client.embeddings
      .create({ model: "embed-small", input: ["first text", "second text"], encoding_format: "float" })
      .withResponse();
    assert.equal(r.object, "list");
    assert.equal(r.data.length, 2);
    assert.equal(r.data[1].index, 1);
    assert.equal(r.data[0].embedding.length, 8);
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.equal(r.usage.prompt_tokens, 6);
    assert.equal(response.headers.get("x-router-target"), "embed-small");
    assert.equal(response.headers.get("x-router-rule"), "embeddings");
    const [sent] = await mock.requests();
    assert.equal(sent.path, "/v1/embeddings");
    assert.equal(sent.body.model, "mock-embed");
    assert.deepEqual(sent.body.input, ["first text", "second text"]);
    const point = await worker.dataPointFor(response);
    assert.equal(point.blobs[17], "embeddings", "endpoint");
    assert.equal(point.blobs[5], "ok");
    assert.equal(point.blobs[13], "reported");
    assert.equal(point.doubles[4], 6, "input tokens");
    assert.equal(point.doubles[5], 0, "output tokens");
    assert.ok(Math.abs(point.doubles[7] - 6 * 0.02 / 1e6) < 1e-12, `cost ${point.doubles[7]}`);
  });

  test("the SDK's default base64 encoding comes back decoded to the same numbers", async () => {
    const plain = await client.embeddings.create({ model: "embed-small", input: "same text", encoding_format: "float" });
    const b64 = await client.embeddings.create({ model: "embed-small", input: "same text" });
    assert.equal(b64.data[0].embedding.length, 8);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(b64.data[0].embedding[i] - plain.data[0].embedding[i]) < 1e-6);
  });

  test("a failing model falls back to one of the same dimensions", async () => {
    const { data: r, response } = await client.embeddings.create({ model: "embed-down", input: "hello" }).withResponse();
    assert.equal(r.data[0].embedding.length, 8);
    assert.equal(response.headers.get("x-router-target"), "embed-small");
    assert.equal(response.headers.get("x-router-fallback"), "yes");
  });

  test("Azure and Gemini targets: their URLs and shapes, the answer in OpenAI's", async () => {
    await mock.clear();
    const az = await client.embeddings.create({ model: "embed-azure", input: "hello", encoding_format: "float" });
    assert.equal(az.data[0].embedding.length, 8);
    const gm = await client.embeddings.create({ model: "embed-gemini", input: ["a b", "c d"], dimensions: 4, encoding_format: "float" });
    assert.equal(gm.data.length, 2);
    assert.equal(gm.data[0].embedding.length, 4);
    const { data: gm64, response } = await client.embeddings.create({ model: "embed-gemini", input: "a b" }).withResponse();
    assert.equal(gm64.data[0].embedding.length, 8);
    const sent = await mock.requests();
    assert.equal(sent[0].path, "/openai/deployments/embed-deployment/embeddings?api-version=2024-10-21");
    assert.equal(sent[0].headers["api-key"], "mock-secret-for-tests");
    assert.equal(sent[1].path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert.deepEqual(sent[1].body.requests[1], { model: "models/gemini-embedding-001", content: { parts: [{ text: "c d" }] }, outputDimensionality: 4 });
    const point = await worker.dataPointFor(response);
    assert.equal(point.blobs[13], "estimated", "Gemini reports no usage: the tokens are estimated");
  });

  test("/v1/models lists embedding models apart from chat models", async () => {
    const list = await client.models.list();
    const byId = Object.fromEntries(list.data.map((m) => [m.id, m]));
    assert.equal(byId["embed-small"].router_kind, "embedding_model");
    assert.equal(byId["embed-small"].dimensions, 8);
    assert.equal(byId.fast.router_kind, "model");
  });

  test("wrong model kinds and bad input: stable codes", async () => {
    const cases = [
      [{ model: "fast", input: "x" }, 404, "model_not_found", /chat model/],
      [{ model: "nope", input: "x" }, 404, "model_not_found", /embed-small/],
      [{ model: "embed-small", input: "" }, 400, "invalid_request", /input/],
      [{ model: "embed-small", input: [1, "a"] }, 400, "invalid_request", /input/],
      [{ model: "embed-small", input: "x", encoding_format: "int8" }, 400, "invalid_request", /encoding_format/],
      [{ model: "embed-gemini", input: [[1, 2]] }, 400, "invalid_request", /token ids/],
    ];
    for (const [body, status, code, says] of cases) {
      await assert.rejects(client.embeddings.create(body), (err) => {
        assert.equal(err.status, status, JSON.stringify(body));
        assert.equal(err.code, code, JSON.stringify(body));
        assert.match(err.message, says);
        return true;
      });
    }
    const chat = await fetch(`${worker.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "embed-small", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(chat.status, 400);
    assert.match((await chat.json()).error.message, /embedding model/);
  });
});
