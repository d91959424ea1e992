// The admin API's routes for the console, through the built Worker in workerd: stored versions,
// validation without storing, explain for the admin key, gateway keys made, listed and revoked
// in KV as the CLI keeps them, and traffic read from a local double of the Analytics Engine SQL
// API (ANALYTICS_SQL_URL), which checks that the account and the token reach it.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, sha256, GATEWAY_KEY, MOCK_API_KEY } from "./harness.mjs";

const ADMIN = "admin-secret-for-tests";
const ACCOUNT = "acc0123456789";
const TOKEN = "cf-api-token-for-tests";

/** A double of the SQL API: canned rows in its JSON shape, by what the query asks. */
async function startSqlApi() {
  const calls = [];
  const failures = [];
  const server = createServer(async (req, res) => {
    let sql = "";
    for await (const chunk of req) sql += chunk;
    calls.push({ method: req.method, url: req.url, authorization: req.headers.authorization, sql });
    const failure = failures.shift();
    if (failure) {
      res.writeHead(failure.status, { "content-type": "application/json" });
      res.end(JSON.stringify(failure.body));
      return;
    }
    let data;
    if (sql.includes("toStartOfInterval")) {
      data = [
        { t: "2026-12-02 09:00:00", task: "faq", model: "mock-fast", requests: "3", cost_usd: 0.003, input_tokens: "30", output_tokens: "9" },
        { t: "2026-12-02 10:00:00", task: "faq", model: "mock-fast", requests: "1", cost_usd: 0.001, input_tokens: "10", output_tokens: "3" },
      ];
    } else if (sql.includes("blob1 AS task, blob5 AS model")) {
      data = [{ task: "faq", model: "mock-fast", requests: "4", cost_usd: 0.004, input_tokens: "40", output_tokens: "12" }];
    } else if (sql.includes("blob6 AS outcome")) {
      data = [{ outcome: "ok", requests: "3" }, { outcome: "upstream_error", requests: "1" }];
    } else if (sql.includes("AS fallback_rate")) {
      data = [{ provider: "mock", requests: "4", fallback_rate: 0.5 }];
    } else {
      data = [{ requests: "3", p50_ms: 12.5, p95_ms: 40 }];
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ meta: Object.keys(data[0]).map((name) => ({ name, type: "String" })), data, rows: data.length }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    failNext: (status, body) => failures.push({ status, body }),
    stop: () => new Promise((r) => server.close(r)),
  };
}

describe("admin API for the console", () => {
  let mock;
  let sql;
  let worker;
  before(async () => {
    mock = await startMock();
    sql = await startSqlApi();
    worker = await startWorker({
      rules: testRules(mock.url),
      secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN, CLOUDFLARE_ACCOUNT_ID: ACCOUNT, CLOUDFLARE_API_TOKEN: TOKEN },
      vars: { ANALYTICS_SQL_URL: `${sql.url}/client/v4` },
    });
  });
  after(async () => {
    await worker?.stop();
    await sql?.stop();
    await mock?.stop();
  });
  const admin = (method, path, body, { key = ADMIN, headers = {} } = {}) =>
    fetch(`${worker.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });

  test("only the admin key opens the new routes", async () => {
    const routes = [
      ["GET", "/admin/rules/versions/1"],
      ["POST", "/admin/rules/validate"],
      ["POST", "/admin/explain"],
      ["GET", "/admin/keys"],
      ["POST", "/admin/keys"],
      ["DELETE", "/admin/keys/test-key"],
      ["GET", "/admin/traffic"],
    ];
    for (const [method, path] of routes) {
      const body = method === "POST" ? "{}" : undefined;
      let r = await admin(method, path, body, { key: null });
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.equal((await r.json()).error.code, "missing_api_key");
      r = await admin(method, path, body, { key: GATEWAY_KEY });
      assert.equal(r.status, 401, `${method} ${path} with a gateway key`);
      assert.equal((await r.json()).error.code, "invalid_api_key");
    }
    assert.equal(sql.calls.length, 0);
  });

  test("stored versions, and validation that stores nothing", async () => {
    let r = await admin("PUT", "/admin/rules", testRules(mock.url, { version: 2 }));
    assert.equal(r.status, 200);
    r = await admin("PUT", "/admin/rules", testRules(mock.url, { version: 3, default: "strong" }));
    assert.equal(r.status, 200);
    r = await admin("GET", "/admin/rules/versions/2");
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { version: 2, live: false, rules: testRules(mock.url, { version: 2 }) });
    const v3 = await (await admin("GET", "/admin/rules/versions/3")).json();
    assert.equal(v3.live, true);
    assert.equal(v3.rules.default, "strong");
    r = await admin("GET", "/admin/rules/versions/7");
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, "not_found");
    r = await admin("GET", "/admin/rules/versions/latest");
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, "invalid_request");

    r = await admin("POST", "/admin/rules/validate", testRules(mock.url, { version: 9 }));
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { valid: true, version: 9 });
    r = await admin("POST", "/admin/rules/validate", { ...testRules(mock.url, { version: 10 }), default: "nope", extra: 1 });
    assert.equal(r.status, 200);
    const invalid = await r.json();
    assert.equal(invalid.valid, false);
    assert.deepEqual(invalid.errors.map((e) => e.path).sort(), ["default", "extra"]);
    assert.ok(invalid.errors.every((e) => typeof e.message === "string" && e.message.length > 0));
    r = await admin("POST", "/admin/rules/validate", "{ not json");
    const notJson = await r.json();
    assert.equal(r.status, 200);
    assert.equal(notJson.valid, false);
    assert.equal(notJson.errors.length, 1);
    assert.equal(await worker.kv.get("rules:v:9"), null, "validation stores nothing");
    assert.equal(await worker.kv.get("rules:live"), "3");
  });

  test("POST /admin/explain answers what /v1/router/explain does", async () => {
    const body = { model: "auto", messages: userMessage("Summarise our refund policy") };
    const headers = { "content-type": "application/json", "x-router-metadata": JSON.stringify({ plan: "pro" }) };
    const viaGateway = await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { ...headers, authorization: `Bearer ${GATEWAY_KEY}` },
      body: JSON.stringify(body),
    });
    const viaAdmin = await admin("POST", "/admin/explain", body, { headers });
    assert.equal(viaAdmin.status, 200);
    assert.equal(viaGateway.status, 200);
    const explained = await viaAdmin.json();
    assert.deepEqual(explained, await viaGateway.json());
    assert.equal(explained.rule, "paid-plans", "the metadata header is read");
    assert.equal(viaAdmin.headers.get("x-router-rules-version"), viaGateway.headers.get("x-router-rules-version"));
    const before = (await mock.requests()).length;
    const r = await admin("POST", "/admin/explain", "{");
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, "invalid_json");
    assert.equal((await mock.requests()).length, before, "no provider is called");
  });

  test("gateway keys: made, used, listed and revoked as the CLI keeps them", async () => {
    let r = await admin("POST", "/admin/keys", { name: "Team A", id: "team-a", allowed_routes: ["default"], requests_per_minute: 100, spend_usd_per_day: 5 });
    assert.equal(r.status, 201);
    const made = await r.json();
    assert.match(made.key, /^tr_[0-9a-f]{48}$/);
    assert.deepEqual(
      { ...made.record, created_at_ms: typeof made.record.created_at_ms },
      { id: "team-a", name: "Team A", revoked: false, allowed_routes: ["default"], allowed_tasks: null, requests_per_minute: 100, spend_usd_per_day: 5, created_at_ms: "number" },
    );
    const stored = await worker.kv.get(`gateway-key:${sha256(made.key)}`);
    assert.deepEqual(JSON.parse(stored), made.record, "stored under the key's SHA-256 only");
    const c = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: made.key });
    assert.equal(c.status, 200, "the new key opens the gateway");

    r = await admin("POST", "/admin/keys", { name: "Team B" });
    assert.equal(r.status, 201);
    const second = await r.json();
    assert.match(second.record.id, /^key-[0-9a-f]{8}$/);
    assert.notEqual(second.key, made.key);

    r = await admin("GET", "/admin/keys");
    assert.equal(r.status, 200);
    const text = await r.text();
    const listed = JSON.parse(text).keys;
    assert.deepEqual(listed.map((k) => k.id), ["test-key", "team-a", second.record.id], "seeded (no time) first, then by creation");
    assert.ok(!text.includes("tr_") && !text.includes(sha256(made.key)), "no key or hash is ever listed");

    for (const [body, field] of [
      [{}, "name"],
      [{ name: "x", requests_per_minute: 1.5 }, "requests_per_minute"],
      [{ name: "x", allowed_tasks: [1] }, "allowed_tasks"],
      [{ name: "x", surprise: true }, "surprise"],
    ]) {
      r = await admin("POST", "/admin/keys", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      const err = (await r.json()).error;
      assert.equal(err.code, "invalid_request");
      assert.ok(err.message.includes(`\`${field}\``), err.message);
    }
    r = await admin("POST", "/admin/keys", { name: "again", id: "team-a" });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error.code, "key_exists");

    // Revoked before its first use: no isolate holds it, so it is refused at once.
    r = await admin("DELETE", `/admin/keys/${second.record.id}`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { revoked: second.record.id });
    assert.equal(JSON.parse(await worker.kv.get(`gateway-key:${sha256(second.key)}`)).revoked, true);
    const refused = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: second.key });
    assert.equal(refused.status, 401);
    r = await admin("DELETE", "/admin/keys/no-such-key");
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.code, "not_found");
  });

  test("a key made a moment ago is revoked by its id at once, through the id index", async () => {
    let r = await admin("POST", "/admin/keys", { name: "Short-lived", id: "short-lived" });
    assert.equal(r.status, 201);
    const made = await r.json();
    assert.equal(await worker.kv.get("gateway-key-id:short-lived"), `gateway-key:${sha256(made.key)}`);
    r = await admin("DELETE", "/admin/keys/short-lived");
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { revoked: "short-lived" });
    assert.equal(JSON.parse(await worker.kv.get(`gateway-key:${sha256(made.key)}`)).revoked, true);
    const refused = await chat(worker.url, { model: "auto", messages: userMessage() }, { key: made.key });
    assert.equal(refused.status, 401);
    r = await admin("POST", "/admin/keys", { name: "again", id: "short-lived" });
    assert.equal(r.status, 409, "a revoked key's id stays taken");
    r = await admin("GET", "/admin/keys");
    const listed = await r.json();
    assert.equal(listed.unread, 0);
    assert.equal(listed.truncated, false);
  });

  test("a rollback body other than {\"version\": n} is refused, never read as the previous version", async () => {
    const live = await worker.kv.get("rules:live");
    for (const body of [{ version: "2" }, { version: 2.5 }, { version: -1 }, [2], { version: 2, extra: true }]) {
      const r = await admin("POST", "/admin/rules/rollback", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((await r.json()).error.code, "invalid_request");
      assert.equal(await worker.kv.get("rules:live"), live, `${JSON.stringify(body)} changed nothing`);
    }
  });

  test("traffic: the shared queries through the SQL API, shaped for charts", async () => {
    sql.calls.length = 0;
    let r = await admin("GET", "/admin/traffic");
    assert.equal(r.status, 200, await r.clone().text());
    const t = await r.json();
    assert.equal(t.since, "24h");
    assert.equal(t.bucket, "15m");
    assert.deepEqual(t.over_time[0], { t: "2026-12-02 09:00:00", task: "faq", model: "mock-fast", requests: 3, cost_usd: 0.003, input_tokens: 30, output_tokens: 9 });
    assert.deepEqual(t.by_task, [{ task: "faq", requests: 4, cost_usd: 0.004, input_tokens: 40, output_tokens: 12 }]);
    assert.deepEqual(t.by_model, [{ model: "mock-fast", requests: 4, cost_usd: 0.004, input_tokens: 40, output_tokens: 12 }]);
    assert.deepEqual(t.outcomes, [{ outcome: "ok", requests: 3, share: 0.75 }, { outcome: "upstream_error", requests: 1, share: 0.25 }]);
    assert.equal(t.fallback_rate, 0.5);
    assert.deepEqual(t.latency, { p50_ms: 12.5, p95_ms: 40 });
    assert.equal(sql.calls.length, 5);
    for (const call of sql.calls) {
      assert.equal(call.method, "POST");
      assert.equal(call.url, `/client/v4/accounts/${ACCOUNT}/analytics_engine/sql`);
      assert.equal(call.authorization, `Bearer ${TOKEN}`);
      assert.match(call.sql, /_sample_interval/);
      assert.match(call.sql, /FROM taskrouter_requests WHERE timestamp > NOW\(\) - INTERVAL '24' HOUR/);
    }

    sql.calls.length = 0;
    r = await admin("GET", "/admin/traffic?since=30m");
    assert.equal((await r.json()).bucket, "1m");
    assert.match(sql.calls[0].sql, /INTERVAL '30' MINUTE/);

    r = await admin("GET", "/admin/traffic?since=7weeks");
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, "invalid_request");

    sql.failNext(422, { success: false, errors: [{ code: 1000, message: "unknown column blob99" }] });
    r = await admin("GET", "/admin/traffic");
    assert.equal(r.status, 502);
    const err = (await r.json()).error;
    assert.equal(err.code, "analytics_query_failed");
    assert.match(err.message, /HTTP 422: unknown column blob99/);
  });

  test("traffic without the secrets says which to set", async () => {
    const other = await startWorker({ rules: testRules(mock.url), secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN }, vars: { ANALYTICS_SQL_URL: sql.url } });
    try {
      sql.calls.length = 0;
      const r = await fetch(`${other.url}/admin/traffic`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(r.status, 503);
      const err = (await r.json()).error;
      assert.equal(err.code, "analytics_unconfigured");
      assert.match(err.message, /CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN/);
      assert.equal(sql.calls.length, 0);
    } finally {
      await other.stop();
    }
  });
});
