// The operator console (/admin) in a real browser: Debian's Chromium driven by puppeteer-core,
// against the built Worker in workerd with an admin key, the mock provider, and a local double of
// the Analytics Engine SQL API. Each page is saved to tests/e2e/artifacts/console-*.png.
// Every wait is bounded; the browser and everything started here stop in `after`.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { once } from "node:events";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import puppeteer from "puppeteer-core";
import { ROOT, GATEWAY_KEY, MOCK_API_KEY, chat, startMock, startWorker, testRules, userMessage } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const ADMIN = "console-admin-key-for-tests";
const ARTIFACTS = path.join(ROOT, "tests", "e2e", "artifacts");
const WAIT = 10_000;
const T = { timeout: 60_000 };

/** The SQL API double: answers each of the traffic queries with rows of the shape it selects. */
function sqlDouble() {
  const seen = [];
  const now = Date.now();
  const hour = (k) => new Date(now - k * 3_600_000).toISOString().slice(0, 13).replace("T", " ") + ":00:00";
  const overTime = [];
  for (let k = 5; k >= 0; k--) {
    overTime.push({ t: hour(k), task: "code_generation", model: "strong", requests: 10 + k, cost_usd: 0.02 * (10 + k), input_tokens: 900 + 50 * k, output_tokens: 400 });
    overTime.push({ t: hour(k), task: "summarisation", model: "fast", requests: 30 - 2 * k, cost_usd: 0.001 * (30 - 2 * k), input_tokens: 2000, output_tokens: 150 + 10 * k });
  }
  const answer = (sql) => {
    if (sql.includes("toStartOfInterval")) return overTime;
    if (sql.includes("GROUP BY task, model")) {
      return [
        { task: "code_generation", model: "strong", requests: 75, cost_usd: 1.5, input_tokens: 70000, output_tokens: 24000 },
        { task: "summarisation", model: "fast", requests: 150, cost_usd: 0.15, input_tokens: 12000, output_tokens: 1000 },
      ];
    }
    if (sql.includes("AS outcome")) return [{ outcome: "ok", requests: 210 }, { outcome: "provider_error", requests: 9 }, { outcome: "rate_limited", requests: 6 }];
    if (sql.includes("fallback_rate")) return [{ provider: "mock", requests: 225, fallback_rate: 0.04 }];
    if (sql.includes("p95_ms")) return [{ requests: 210, p50_ms: 420, p95_ms: 1800 }];
    return [];
  };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push({ url: req.url, auth: req.headers.authorization, sql: body });
      const data = answer(body);
      const meta = Object.keys(data[0] ?? {}).map((name) => ({ name, type: "String" }));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ meta, data, rows: data.length }));
    });
  });
  return {
    seen,
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return `http://127.0.0.1:${server.address().port}`;
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("operator console", () => {
  let mock;
  let worker;
  let sql;
  let browser;
  let page;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run scripts/setup.sh (it installs Debian's chromium)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    mock = await startMock();
    sql = sqlDouble();
    const sqlUrl = await sql.start();
    worker = await startWorker({
      rules: testRules(mock.url),
      vars: { ANALYTICS_SQL_URL: sqlUrl },
      secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN, CLOUDFLARE_ACCOUNT_ID: "0123abcd", CLOUDFLARE_API_TOKEN: "sql-double-token" },
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage"],
      timeout: 30_000,
      protocolTimeout: 30_000,
    });
    page = await browser.newPage();
    page.setDefaultTimeout(WAIT);
    await page.setViewport({ width: 1360, height: 900 });
  });

  after(async () => {
    await browser?.close();
    await worker?.stop();
    await sql?.stop();
    await mock?.stop();
  });

  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
  const text = (selector) => page.$eval(selector, (el) => el.textContent);
  /** Wait until `selector`'s text matches `re` (failing with the text it has). */
  const waitText = async (selector, re, p = page) => {
    try {
      await p.waitForFunction((sel, src) => new RegExp(src).test(document.querySelector(sel)?.textContent ?? ""), { timeout: WAIT }, selector, re.source);
    } catch (e) {
      const got = await p.$eval(selector, (el) => el.textContent).catch(() => "(no such element)");
      throw new Error(`${selector} never matched ${re}: it says ${JSON.stringify(got)} (${e.message})`);
    }
  };
  /** Set a field as typing would (an `input` event). */
  const setValue = (selector, value) =>
    page.$eval(selector, (el, v) => {
      el.value = v;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    }, value);
  const confirmDialog = async () => {
    await page.waitForSelector("dialog#confirm[open]", { timeout: WAIT });
    await page.click("#confirm-yes");
    await page.waitForSelector("dialog#confirm:not([open])", { timeout: WAIT });
  };
  const signIn = async (p, url, key) => {
    await p.goto(`${url}/admin`, { waitUntil: "load", timeout: WAIT });
    await p.waitForSelector("#admin-key", { visible: true, timeout: WAIT });
    await p.$eval("#admin-key", (el) => (el.value = ""));
    await p.type("#admin-key", key);
    await p.click("#login-form button[type=submit]");
  };
  const tab = async (name, p = page) => {
    await p.click(`#tabs button[data-tab=${name}]`);
    await p.waitForSelector(`#tab-${name}:not([hidden])`, { timeout: WAIT });
  };
  /** Whether `value` is anywhere in the page: its markup or any field's value. */
  const pageHas = (p, value) =>
    p.evaluate((v) => document.documentElement.outerHTML.includes(v) || [...document.querySelectorAll("input, textarea")].some((el) => el.value.includes(v)), value);
  /**
   * Run `body` with every request of `p` offered to `handle` first (it returns true when it has
   * answered, aborted or kept the request itself; anything else goes on unchanged).
   */
  const intercepting = async (p, handle, body) => {
    const listener = (req) => {
      if (!handle(req)) req.continue().catch(() => {});
    };
    await p.setRequestInterception(true);
    p.on("request", listener);
    try {
      return await body();
    } finally {
      p.off("request", listener);
      await p.setRequestInterception(false);
    }
  };
  /** A promise and its resolve function. */
  const deferred = () => {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    return { promise, resolve };
  };
  /** `promise`, or a failure naming `what` after WAIT. */
  const within = (promise, what) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${WAIT} ms`)), WAIT))]);
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));

  test("the pages are served without a key, with a strict content security policy; the API keeps its key", T, async () => {
    for (const [p, type] of [["/admin", "text/html"], ["/admin/", "text/html"], ["/admin/console/console.js", "text/javascript"], ["/admin/console/console.css", "text/css"]]) {
      const r = await fetch(`${worker.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get("content-type"), new RegExp(`^${type}`), p);
      assert.equal(r.headers.get("content-security-policy"), "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.equal(r.headers.get("referrer-policy"), "no-referrer");
      assert.ok((await r.text()).length > 100, p);
    }
    assert.equal((await fetch(`${worker.url}/admin/console/tasks-v2.trcls`)).status, 404, "the task model is never served");
    assert.equal((await fetch(`${worker.url}/admin/console/lexicon.trlx`)).status, 404, "nor its lexicon");
    assert.equal((await fetch(`${worker.url}/lexicon.trlx`)).status, 404);
    assert.equal((await fetch(`${worker.url}/admin/rules`)).status, 401);
  });

  test("signing in: a wrong key is refused with a message, the right one opens the console", T, async () => {
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && !/401|Unauthorized/.test(m.text()) && errors.push(m.text()));
    await signIn(page, worker.url, "not-the-admin-key");
    await waitText("#login-error", /the admin key is not valid/);
    assert.equal(await page.$eval("#tabs", (el) => el.hidden), true);
    await shot("login");
    await signIn(page, worker.url, ADMIN);
    await page.waitForSelector("#tab-rules:not([hidden])", { timeout: WAIT });
    await waitText("#live-version", /version 1/);
    assert.match(await text("#live-rules"), /"default": "fast"/);
    // A hash naming something every object has is not a tab: the rules tab opens.
    for (const bogus of ["#constructor", "#__proto__", "#toString"]) {
      await page.evaluate((hsh) => (location.hash = hsh), bogus);
      await page.waitForFunction(() => location.hash === "#rules", { timeout: WAIT }).catch(async () => {
        throw new Error(`${bogus} left the hash at ${await page.evaluate(() => location.hash)}`);
      });
      assert.equal(await page.$eval("#tab-rules", (el) => el.hidden), false, bogus);
    }
    assert.deepEqual(errors, [], "no script errors and nothing blocked by the content security policy");
  });

  test("rules: an invalid edit shows the error at its path and keeps Push off; a valid push goes live and routes; rollback", T, async () => {
    // Version 2 pushed through the API, so a version below the one pushed here is stored.
    const r = await fetch(`${worker.url}/admin/rules`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(testRules(mock.url, { version: 2 })) });
    assert.equal(r.status, 200, await r.text());
    await page.reload({ waitUntil: "load", timeout: WAIT });
    await page.waitForSelector("#tab-rules:not([hidden])", { timeout: WAIT });
    await waitText("#live-version", /version 2/);
    await waitText("#validate-status", /problem/); // the live document's own version is not above itself
    const v3 = testRules(mock.url, { version: 3, default: "strong" });
    await setValue("#editor", JSON.stringify({ ...v3, default: "nope" }, null, 2));
    await waitText("#validate-errors", /default/);
    assert.deepEqual(await page.$$eval("#validate-errors .path", (els) => els.map((e) => e.textContent)), ["default"]);
    assert.equal(await page.$eval("#push", (b) => b.disabled), true);
    // Not JSON at all: the editor says so, before asking the Worker.
    await setValue("#editor", "{ not json");
    await waitText("#validate-errors", /not JSON/);
    assert.equal(await page.$eval("#push", (b) => b.disabled), true);

    await setValue("#editor", JSON.stringify(v3, null, 2));
    await waitText("#validate-status", /Valid: version 3/);
    assert.equal(await page.$eval("#push", (b) => b.disabled), false);
    await page.click("#push");
    await confirmDialog();
    await waitText("#live-version", /version 3/);
    await waitText("#rules-message", /version 3 is live/);
    const c = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(c.status, 200);
    assert.equal(c.headers.get("x-router-rules-version"), "3");
    assert.equal(c.headers.get("x-router-target"), "strong");

    // The diff between the two versions: the changed line, each way.
    await page.select("#diff-from", "2");
    await page.select("#diff-to", "3");
    await page.click("#diff-form button[type=submit]");
    await waitText("#diff-summary", /v2 → v3: 2 line\(s\) added, 2 removed/);
    const changed = await page.$$eval("#diff .line.add, #diff .line.del", (els) => els.map((e) => `${e.querySelector(".op").textContent} ${e.querySelector(".text").textContent.trim()}`));
    assert.deepEqual(changed, ['- "default": "fast",', '+ "default": "strong",', '- "version": 2', '+ "version": 3']);
    await shot("rules");

    await page.click("#rollback-previous");
    await confirmDialog();
    await waitText("#live-version", /version 2/);
    await waitText("#rules-message", /version 2 is live \(was 3\)/);
    const back = await chat(worker.url, { model: "auto", messages: userMessage() });
    assert.equal(back.headers.get("x-router-rules-version"), "2");
    assert.equal(back.headers.get("x-router-target"), "fast");
    assert.match(await text("#history"), /rollback\s*version 2/);
  });

  test("playground: a tagged prompt's route drawn (scores, matched keyword, routes, plan), then sent for real", T, async () => {
    const tagged = testRules(mock.url, {
      version: 4,
      tasks: { code: { keywords: ["palindrome"] } },
      classifier: { model: "builtin", min_score: 0.6 },
      routes: [
        { name: "paid-plans", when: { "metadata.plan": { $in: ["pro", "team"] } }, then: "strong" },
        { name: "code-route", when: { task: "code" }, then: { fallback: ["strong", "fast"] } },
      ],
    });
    const r = await fetch(`${worker.url}/admin/rules`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(tagged) });
    assert.equal(r.status, 200, await r.text());
    await tab("playground");
    await setValue("#play-messages", JSON.stringify([{ role: "user", content: "Write a palindrome checker in Python." }], null, 2));
    await setValue("#play-metadata", JSON.stringify({ plan: "free" }));
    // Key headers typed in the box go with neither request: explain keeps the admin key (a wrong
    // one here would sign out), send keeps the gateway key field's.
    await setValue("#play-headers", "Authorization: Bearer not-a-key\nx-router-key: not-a-key\nX-Api-Key: not-a-key\nx-console-test: 1");
    await page.click("#explain");
    await waitText("#explanation .route-name", /^code-route$/);
    assert.equal(await page.$eval("#play-note", (el) => el.hidden), false);
    assert.match(await text("#play-note"), /Not sent: authorization, x-router-key, x-api-key\./);
    assert.equal(await page.$eval("#tabs", (el) => el.hidden), false, "still signed in");
    assert.deepEqual(await page.$$eval("#explanation mark", (els) => els.map((e) => e.textContent)), ["palindrome"]);
    assert.match(await text("#explanation .score.chosen"), /code/);
    const routes = await page.$$eval("#explanation .routes > li", (els) => els.map((e) => e.className + ": " + e.textContent));
    assert.match(routes[0], /^failed: .*paid-plans.*metadata\.plan/);
    assert.match(routes[1], /^matched: .*code-route/);
    assert.deepEqual(await page.$$eval("#explanation .chain .step strong", (els) => els.map((e) => e.textContent)), ["strong", "fast"]);
    assert.match(await text("#explanation .facts"), /metadata/);
    // The built-in task model's top labels, as bars, its best first.
    const labels = await page.$$eval("#explanation .labels .score .label", (els) => els.map((e) => e.textContent));
    assert.equal(labels.length, 3, labels.join(", "));
    assert.equal(labels[0], "code_generation");
    assert.equal(await page.$$eval("#explanation .labels svg.bar", (els) => els.length), 3);

    await page.click("#send");
    await waitText("#play-error", /gateway key is needed/);
    await page.type("#gateway-key", GATEWAY_KEY);
    await page.click("#send");
    await waitText("#sent h3", /HTTP 200/);
    const headers = await text("#sent .sent-headers");
    assert.match(headers, /x-router-rulecode-route/);
    assert.match(headers, /x-router-modelmock-strong/);
    assert.ok((await text("#sent .answer")).length > 0);
    await shot("playground");
  });

  test("keys: create one (shown once), revoke it; the list shows its record, never the key", T, async () => {
    await tab("keys");
    await page.type("#key-name", "console test key");
    await page.type("#key-rpm", "60");
    await page.click("#key-form button[type=submit]");
    await page.waitForSelector("#new-key:not([hidden])", { timeout: WAIT });
    const key = await text("#new-key-value");
    assert.match(key, /^tr_/);
    await waitText("#keys-message", /Created key \S+\./);
    const id = (await text("#keys-message")).match(/Created key (\S+)\./)[1];
    await page.waitForSelector(`#keys tr[data-key="${id}"]`, { timeout: WAIT });
    assert.match(await page.$eval(`#keys tr[data-key="${id}"]`, (r) => r.textContent), /console test key/);
    const ok = await chat(worker.url, { model: "auto", messages: userMessage() }, { key });
    assert.equal(ok.status, 200, "the new key works");
    await shot("keys");

    await page.click(`#keys tr[data-key="${id}"] button`);
    await confirmDialog();
    await page.waitForSelector(`#keys tr.revoked[data-key="${id}"]`, { timeout: WAIT });
    await waitText("#keys-message", /Revoked/);
    assert.equal(await page.$eval("#new-key", (el) => el.hidden), true, "the new key is no longer shown");

    // Shown once: the list read again from the API (the page loaded anew) has the key's record
    // and nowhere the key.
    await page.reload({ waitUntil: "load", timeout: WAIT });
    await page.waitForSelector(`#keys tr.revoked[data-key="${id}"]`, { timeout: WAIT });
    assert.match(await page.$eval(`#keys tr[data-key="${id}"]`, (r) => r.textContent), /console test key/);
    assert.equal(await pageHas(page, key), false, "the key is nowhere in the page");
  });

  test("keys: one click makes one key; a name with markup is shown as text", T, async () => {
    await tab("keys");
    const name = "<img src=x onerror=window.__xss=1>";
    const posted = [];
    const held = deferred();
    const release = deferred();
    await intercepting(page, (req) => {
      if (req.method() !== "POST" || !req.url().endsWith("/admin/keys")) return false;
      posted.push(req.url());
      if (posted.length > 1) return false;
      held.resolve();
      release.promise.then(() => req.continue().catch(() => {}));
      return true;
    }, async () => {
      await setValue("#key-name", name);
      await page.click("#create-key");
      await within(held.promise, "the create request");
      assert.equal(await page.$eval("#create-key", (b) => b.disabled), true, "Create is off while its request is in flight");
      await page.click("#create-key");
      await page.$eval("#key-form", (f) => f.requestSubmit());
      await pause(300);
      release.resolve();
      await page.waitForSelector("#new-key:not([hidden])", { timeout: WAIT });
      await page.waitForFunction(() => !document.querySelector("#create-key").disabled, { timeout: WAIT });
    });
    assert.equal(posted.length, 1, "one key created");
    const cells = await page.$$eval("#keys tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
    assert.equal(cells.filter((c) => c === name).length, 1, `the name as text: ${JSON.stringify(cells)}`);
    assert.equal(await page.$$eval("#keys img", (els) => els.length), 0, "no markup from the name");
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  test("signing out forgets what the page held: signed in again, no key shown once, no gateway key, no answers", T, async () => {
    await tab("keys");
    await setValue("#key-name", "sign-out test key");
    await page.click("#create-key");
    await page.waitForSelector("#new-key:not([hidden])", { timeout: WAIT });
    const key = await text("#new-key-value");
    assert.match(key, /^tr_/);
    await tab("playground");
    await page.type("#gateway-key", GATEWAY_KEY);
    await page.click("#explain");
    await page.waitForSelector("#explanation .verdict", { timeout: WAIT });
    await setValue("#editor", "{ \"edited\": true }");

    await Promise.all([page.waitForNavigation({ waitUntil: "load", timeout: WAIT }).catch(() => {}), page.click("#logout")]);
    await page.waitForSelector("#admin-key", { visible: true, timeout: WAIT });
    assert.equal(await page.$eval("#tabs", (el) => el.hidden), true);
    // Signed in again from the form (no navigation: whatever the page kept would still be there).
    await page.type("#admin-key", ADMIN);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#tab-playground:not([hidden])", { timeout: WAIT });
    await tab("keys");
    await page.waitForSelector("#keys tr[data-key]", { timeout: WAIT });
    await tab("rules");
    await waitText("#live-version", /version \d+/);
    assert.equal(await pageHas(page, key), false, "the key shown once is gone");
    assert.equal(await pageHas(page, GATEWAY_KEY), false, "the gateway key typed is gone");
    assert.equal(await page.$eval("#gateway-key", (el) => el.value), "");
    assert.equal(await page.$$eval("#explanation .verdict, #sent *", (els) => els.length), 0, "no answers");
    assert.equal(await page.$eval("#new-key", (el) => el.hidden), true);
    assert.doesNotMatch(await page.$eval("#editor", (el) => el.value), /edited/, "the editor starts from the live rules");
  });

  test("traffic: charts drawn from the SQL API", T, async () => {
    const asked = [];
    const count = (req) => req.url().includes("/admin/traffic") && asked.push(new URL(req.url()).search);
    page.on("request", count);
    // A load that fails is tried again when the tab is opened next.
    let failed = 0;
    await intercepting(page, (req) => {
      if (!req.url().includes("/admin/traffic") || failed) return false;
      failed++;
      req.abort("failed").catch(() => {});
      return true;
    }, async () => {
      await tab("traffic");
      await waitText("#traffic", /Traffic is not available/);
    });
    await tab("rules");
    await tab("traffic");
    await page.waitForSelector("#traffic svg.line-chart", { timeout: WAIT });
    assert.equal(await page.$$eval("#traffic svg.line-chart", (els) => els.length), 3, "requests, cost and tokens over time");
    assert.ok((await page.$$eval("#traffic svg.line-chart path.series", (els) => els.length)) >= 6, "a line per task in each chart");
    assert.equal(await page.$$eval("#traffic svg.bar-chart", (els) => els.length), 4, "outcomes, fallback by provider, by task, by model");
    const tiles = await text("#traffic .tiles");
    assert.match(tiles, /fallback rate4\.0 %/);
    assert.match(tiles, /latency p50420 ms/);
    assert.match(tiles, /latency p951,800 ms/);
    assert.match(await text("#traffic"), /provider_error9 \(4\.0 %\)/);
    // "by" redraws the answer it has: nothing asked again.
    const before = asked.length;
    await page.select("#traffic-by", "model");
    await waitText("#traffic figcaption", /Requests by model/);
    assert.equal(asked.length, before, `asked again: ${asked.slice(before).join(" ")}`);
    assert.ok(sql.seen.length >= 5 && sql.seen.every((q) => q.auth === "Bearer sql-double-token" && q.url === "/accounts/0123abcd/analytics_engine/sql"));
    await shot("traffic");

    // An answer for an earlier period arriving after a later one's is dropped.
    const held = deferred();
    await intercepting(page, (req) => {
      if (!req.url().includes("/admin/traffic?since=1h")) return false;
      held.resolve(req);
      return true;
    }, async () => {
      await page.select("#traffic-since", "1h");
      const stale = await within(held.promise, "the 1h request");
      await page.select("#traffic-since", "7d");
      await page.waitForSelector("#traffic svg.line-chart", { timeout: WAIT });
      assert.match(await text("#traffic .tiles"), /fallback rate4\.0 %/);
      const answered = page.waitForResponse((r) => r.url().includes("since=1h"), { timeout: WAIT });
      await stale.respond({ status: 200, contentType: "application/json", body: JSON.stringify({ since: "1h", over_time: [], outcomes: [], fallback_rate: 0.5, latency: {} }) });
      await answered;
      await pause(300);
    });
    assert.match(await text("#traffic .tiles"), /fallback rate4\.0 %/, "the late 1h answer did not replace the 7d one");
    assert.deepEqual(asked.slice(-2), ["?since=1h", "?since=7d"]);
    page.off("request", count);
  });

  test("a deployment with no rules yet: sign in, no live rules, push the first document", T, async () => {
    const fresh = await startWorker({ rules: undefined, secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN }, quiet: true });
    const p = await browser.newPage();
    p.setDefaultTimeout(WAIT);
    await p.setViewport({ width: 1360, height: 900 });
    try {
      assert.equal((await fetch(`${fresh.url}/admin/rules`, { headers: { authorization: `Bearer ${ADMIN}` } })).status, 503, "no rules stored");
      await signIn(p, fresh.url, ADMIN);
      await p.waitForSelector("#tab-rules:not([hidden])", { timeout: WAIT });
      await waitText("#live-rules", /No rules are live yet/, p);
      await waitText("#history", /no rules are live/, p);
      assert.equal(await p.$eval("#login-error", (el) => el.hidden), true);
      assert.equal(await p.$$eval(".tab-error:not([hidden])", (els) => els.length), 0, "the tab loaded");
      // The editor starts from a skeleton that does not validate yet.
      await waitText("#validate-status", /problem/, p);
      assert.equal(await p.$eval("#push", (b) => b.disabled), true);
      await p.$eval("#editor", (el, v) => {
        el.value = v;
        el.dispatchEvent(new Event("input", { bubbles: true }));
      }, JSON.stringify(testRules(mock.url), null, 2));
      await waitText("#validate-status", /Valid: version 1/, p);
      assert.equal(await p.$eval("#push", (b) => b.disabled), false);
      // Push and rollback are off while the push is in flight.
      const held = deferred();
      const release = deferred();
      await intercepting(p, (req) => {
        if (req.method() !== "PUT" || !req.url().endsWith("/admin/rules")) return false;
        held.resolve();
        release.promise.then(() => req.continue().catch(() => {}));
        return true;
      }, async () => {
        await p.click("#push");
        await p.waitForSelector("dialog#confirm[open]", { timeout: WAIT });
        assert.match(await p.$eval("#confirm-text", (el) => el.textContent), /first rules/);
        await p.click("#confirm-yes");
        await within(held.promise, "the push");
        assert.deepEqual(await p.$$eval("#push, #rollback-previous", (els) => els.map((b) => b.disabled)), [true, true]);
        release.resolve();
        await waitText("#live-version", /version 1/, p);
      });
      await waitText("#rules-message", /version 1 is live/, p);
      assert.match(await p.$eval("#live-rules", (el) => el.textContent), /"default": "fast"/);
      await p.waitForFunction(() => !document.querySelector("#rollback-previous").disabled, { timeout: WAIT });
      const c = await chat(fresh.url, { model: "auto", messages: userMessage() });
      assert.equal(c.status, 200);
      assert.equal(c.headers.get("x-router-rules-version"), "1");
    } finally {
      await p.close();
      await fresh.stop();
    }
  });

  test("traffic without the SQL API's secrets says what to set", T, async () => {
    const bare = await startWorker({ rules: testRules(mock.url), secrets: { MOCK_API_KEY, ADMIN_KEY: ADMIN }, quiet: true });
    const p = await browser.newPage();
    p.setDefaultTimeout(WAIT);
    await p.setViewport({ width: 1360, height: 600 });
    try {
      await signIn(p, bare.url, ADMIN);
      await p.waitForSelector("#tab-rules:not([hidden])", { timeout: WAIT });
      await p.click("#tabs button[data-tab=traffic]");
      await p.waitForSelector("#traffic .notice", { timeout: WAIT });
      const notice = await p.$eval("#traffic .notice", (el) => el.textContent);
      assert.match(notice, /CLOUDFLARE_ACCOUNT_ID/);
      assert.match(notice, /CLOUDFLARE_API_TOKEN/);
      assert.match(notice, /ANALYTICS_SQL_URL/);
      await p.screenshot({ path: path.join(ARTIFACTS, "console-traffic-unconfigured.png"), fullPage: true });
    } finally {
      await p.close();
      await bare.stop();
    }
  });
});
