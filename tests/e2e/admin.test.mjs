// The admin API through the Worker, on local KV: read, push (validated, versions only going up),
// history, rollback (one pointer write), changes taking effect at once in the same isolate, and
// the keys: only ADMIN_KEY opens it, never a gateway key; without the secret it is off.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY, MOCK_API_KEY } from "./harness.mjs";

const ADMIN = "admin-secret-for-tests";

describe("admin API", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    worker = await startWorker({ rules: testRules(mock.url), secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN } });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });
  const admin = (method, path, body, key = ADMIN) =>
    fetch(`${worker.url}${path}`, {
      method,
      headers: key ? { authorization: `Bearer ${key}` } : {},
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });

  test("only the admin key opens it", async () => {
    assert.equal((await admin("GET", "/admin/rules", undefined, null)).status, 401);
    const gw = await admin("GET", "/admin/rules", undefined, GATEWAY_KEY);
    assert.equal(gw.status, 401);
    assert.equal((await gw.json()).error.code, "invalid_api_key");
    const r = await admin("GET", "/admin/rules");
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.live_version, 1, "the single-document layout: its own version");
    assert.equal(body.rules.default, "fast");
  });

  test("push, refuse, history, rollback: each takes effect at once", async () => {
    const v2 = testRules(mock.url, { version: 2, default: "strong" });
    let r = await admin("PUT", "/admin/rules", v2);
    assert.equal(r.status, 200, await r.clone().text());
    assert.deepEqual(await r.json(), { live_version: 2 });
    let c = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(c.headers.get("x-router-rules-version"), "2");
    assert.equal(c.headers.get("x-router-target"), "strong");

    r = await admin("PUT", "/admin/rules", v2);
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error.code, "version_conflict");

    r = await admin("PUT", "/admin/rules", { ...v2, version: 3, default: "nope", extra: 1 });
    assert.equal(r.status, 400);
    const rejected = await r.json();
    assert.equal(rejected.error.code, "rules_rejected");
    assert.deepEqual(rejected.error.errors.map((e) => e.path).sort(), ["default", "extra"]);

    r = await admin("PUT", "/admin/rules", testRules(mock.url, { version: 3 }));
    assert.equal(r.status, 200);
    c = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(c.headers.get("x-router-rules-version"), "3");

    r = await admin("POST", "/admin/rules/rollback");
    assert.deepEqual(await r.json(), { live_version: 2, previous: 3 });
    c = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(c.headers.get("x-router-rules-version"), "2");
    assert.equal(await worker.kv.get("rules:live"), "2", "a rollback is one pointer write");

    assert.equal((await admin("POST", "/admin/rules/rollback", { version: 99 })).status, 404);
    r = await admin("POST", "/admin/rules/rollback", { version: 3 });
    assert.equal((await r.json()).live_version, 3);

    const h = await (await admin("GET", "/admin/rules/history")).json();
    assert.equal(h.live_version, 3);
    assert.deepEqual(h.history.map((e) => [e.action, e.version]), [["push", 2], ["push", 3], ["rollback", 2], ["rollback", 3]]);
    assert.match(h.history[0].sha256, /^[0-9a-f]{64}$/);
  });

  test("without the ADMIN_KEY secret the admin API is off", async () => {
    const other = await startWorker({ rules: testRules(mock.url) });
    try {
      const r = await fetch(`${other.url}/admin/rules`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(r.status, 403);
      assert.equal((await r.json()).error.code, "admin_disabled");
    } finally {
      await other.stop();
    }
  });
});
