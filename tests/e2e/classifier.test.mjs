// The built-in task model through the Worker: an untagged request no rule recognises is routed by
// the model's label, routes read its facts, explain shows its answer, and analytics record the task.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startMock, startWorker, testRules, chat, userMessage, GATEWAY_KEY, CLI_BIN } from "./harness.mjs";

describe("built-in task classifier", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      models: {
        fast: { provider: "mock", model: "mock-fast" },
        strong: { provider: "mock", model: "mock-strong" },
        lingo: { provider: "mock", model: "mock-lingo" },
      },
      tasks: { billing: { keywords: ["invoice"] } },
      classifier: { model: "builtin", min_score: 0.6 },
      routes: [
        { name: "billing", when: { task: "billing" }, then: "fast" },
        { name: "translate", when: { task: "translation" }, then: "lingo" },
        { name: "codegen", when: { model_task: "code_generation", model_score: { $gte: 0.7 } }, then: "strong" },
      ],
      default: "fast",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("an untagged request no keyword matches is routed by the model's label", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage("Could you put this sentence into Spanish for me: 'Our office is closed on Friday.'") });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-task"), "translation");
    assert.equal(r.headers.get("x-router-rule"), "translate");
    assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-lingo"]);
    const p = await worker.dataPointFor(r);
    assert.equal(p.blobs[0], "translation");
    assert.ok(p.doubles[8] >= 0.6 && p.doubles[8] <= 1, `model probability as the score: ${p.doubles[8]}`);
  });

  test("pasted material does not decide the label: the instruction does", async () => {
    await mock.clear();
    const transcript = [
      "Dana: The payment run failed again on Tuesday, so about 40 customers were charged twice.",
      "Marcus: Finance refunded most of them by Thursday, the rest go out Monday.",
      "Priya: We also need to update the billing FAQ and send an apology email.",
      "Dana: Agreed. Marcus owns the refunds, Priya the email, I'll take the FAQ.",
    ].join("\n").repeat(6);
    const r = await chat(worker.url, { model: "auto", messages: userMessage(`key takeaways as bullets pls\n\n${transcript}`) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-router-task"), "summarisation", "a billing-heavy transcript to summarise is summarisation");
    assert.equal((await worker.dataPointFor(r)).blobs[14], "model", "labelled by the model, not a keyword");
  });

  test("a prompt that is none of the tasks is left unlabelled and falls to the default route", async () => {
    await mock.clear();
    for (const text of ["good morning :) hope you're doing well", "Pretend you are a pirate and tell me about your ship."]) {
      const r = await chat(worker.url, { model: "auto", messages: userMessage(text) });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-router-task"), null, text);
      assert.equal(r.headers.get("x-router-rule"), "default", text);
      const p = await worker.dataPointFor(r);
      assert.equal(p.blobs[14], "none", "task_source");
    }
    const e = await (await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "auto", messages: userMessage("good morning :) hope you're doing well") }),
    })).json();
    assert.equal(e.classification.model.top[0][0], "out_of_scope");
    assert.ok(e.classification.model.score < 0.6, `best task below min_score: ${e.classification.model.score}`);
  });

  test("routes read model_task and model_score; a rule's task still wins", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: userMessage("Write a TypeScript function that debounces another function and returns the wrapped version.") });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-router-rule"), "codegen");
    const billing = await chat(worker.url, { model: "auto", messages: userMessage("Translate my invoice into French") });
    assert.equal(billing.headers.get("x-router-task"), "billing", "keyword rules come before the model");
    assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-strong", "mock-fast"]);
  });

  test("explain shows the model's top labels and probabilities", async () => {
    const r = await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "auto", messages: userMessage("Could you send me a copy of my March receipt? Our accountant needs it.") }),
    });
    assert.equal(r.status, 200);
    const e = await r.json();
    assert.equal(e.classification.source, "model");
    assert.equal(e.classification.model.task, "billing");
    assert.equal(e.classification.model.top.length, 3);
    assert.equal(e.facts.model_task, "billing");
    assert.equal(e.facts.task, "billing");
    assert.equal(e.rule, "billing");
  });
});

describe("classifier cascade", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    const rules = testRules(mock.url, {
      models: {
        fast: { provider: "mock", model: "mock-fast" },
        lingo: { provider: "mock", model: "mock-lingo" },
        judge: { provider: "mock", model: "mock-judge", price_per_mtok: { input: 0.1, output: 0.4 } },
      },
      classifier: { min_score: 0.99, cascade: { model: "judge", below: 0.99, timeout_ms: 2000 } },
      routes: [{ name: "translate", when: { task: "translation" }, then: "lingo" }],
      default: "fast",
    });
    worker = await startWorker({ rules });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  const vague = (n) => userMessage(`Can you help me with this one thing, number ${n}?`);
  const pointFor = (r) => worker.dataPointFor(r);

  test("an unsure request asks the cascade model, is routed by its label, and the call is recorded", async () => {
    await mock.clear();
    await mock.script("mock-judge", ['answer={"task": "translation"}']);
    const r = await chat(worker.url, { model: "auto", messages: vague(1) });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-task"), "translation");
    assert.equal(r.headers.get("x-router-rule"), "translate");
    const sent = await mock.requests();
    assert.deepEqual(sent.map((s) => s.body.model), ["mock-judge", "mock-lingo"]);
    const q = sent[0].body;
    assert.equal(q.response_format.type, "json_schema");
    assert.equal(q.response_format.json_schema.schema.properties.task.enum.length, 15, "the 14 tasks and out_of_scope");
    assert.equal(q.stream ?? false, false);
    const p = await pointFor(r);
    assert.deepEqual([p.blobs[0], p.blobs[14], p.blobs[15]], ["translation", "cascade", "answered"]);
    assert.ok(p.doubles[11] >= 0, "cascade_ms");
    assert.ok(p.doubles[12] > 0, `cascade cost from the judge's price: ${p.doubles[12]}`);
  });

  test("the same prompt again takes the cached answer: no second cascade call", async () => {
    await mock.clear();
    const r = await chat(worker.url, { model: "auto", messages: vague(1) });
    assert.equal(r.headers.get("x-router-task"), "translation");
    assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-lingo"]);
    const p = await pointFor(r);
    assert.equal(p.blobs[15], "cached");
  });

  test("a cascade answering out_of_scope sets no task: the request follows the routes without one", async () => {
    await mock.clear();
    await mock.script("mock-judge", ['answer={"task": "out_of_scope"}']);
    const r = await chat(worker.url, { model: "auto", messages: vague(9) });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-task"), null);
    assert.equal(r.headers.get("x-router-rule"), "default");
    const p = await pointFor(r);
    assert.deepEqual([p.blobs[0], p.blobs[15]], ["", "answered"]);
    const again = await chat(worker.url, { model: "auto", messages: vague(9) });
    assert.equal(again.headers.get("x-router-task"), null, "the cached answer is out of scope too");
    assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-judge", "mock-fast", "mock-fast"]);
  });

  test("a failing or off-list cascade answer still routes the request", async () => {
    await mock.clear();
    await mock.script("mock-judge", ["status=500", "answer=poetry"]);
    const failed = await chat(worker.url, { model: "auto", messages: vague(2) });
    assert.equal(failed.status, 200, await failed.clone().text());
    assert.equal(failed.headers.get("x-router-rule"), "default");
    assert.equal((await pointFor(failed)).blobs[15], "failed");
    const offList = await chat(worker.url, { model: "auto", messages: vague(3) });
    assert.equal(offList.status, 200);
    assert.equal(offList.headers.get("x-router-rule"), "default");
    assert.equal((await pointFor(offList)).blobs[15], "unreadable");
    assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-judge", "mock-fast", "mock-judge", "mock-fast"]);
    assert.ok(worker.logs.some((l) => l.includes("cascade_failed")), "the failure is logged");
  });

  test("a new isolate finds the answer in the Cache API: no second cascade call", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-cache-"));
    const rules = testRules(mock.url, {
      models: { fast: { provider: "mock", model: "mock-fast" }, lingo: { provider: "mock", model: "mock-lingo" }, judge: { provider: "mock", model: "mock-judge" } },
      classifier: { min_score: 0.99, cascade: { model: "judge", below: 0.99 } },
      routes: [{ name: "translate", when: { task: "translation" }, then: "lingo" }],
      default: "fast",
    });
    await mock.clear();
    await mock.script("mock-judge", ["answer=translation"]);
    const first = await startWorker({ rules, cachePersist: dir, quiet: true });
    try {
      const r = await chat(first.url, { model: "auto", messages: vague(9) });
      assert.equal(r.headers.get("x-router-task"), "translation");
    } finally {
      await first.stop();
    }
    const second = await startWorker({ rules, cachePersist: dir });
    try {
      const r = await chat(second.url, { model: "auto", messages: vague(9) });
      assert.equal(r.headers.get("x-router-task"), "translation");
      assert.deepEqual((await mock.requests()).map((s) => s.body.model), ["mock-judge", "mock-lingo", "mock-lingo"]);
      const p = await second.dataPointFor(r);
      assert.equal(p.blobs[15], "cached");
    } finally {
      await second.stop();
    }
  });

  test("explain says the cascade would be asked, and asks nothing", async () => {
    await mock.clear();
    const r = await fetch(`${worker.url}/v1/router/explain`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "auto", messages: vague(4) }),
    });
    const e = await r.json();
    assert.equal(e.cascade.would_ask, "judge");
    assert.equal((await mock.requests()).length, 0);
  });
});

describe("a task model from KV", () => {
  let mock;
  let worker;
  before(async () => {
    mock = await startMock();
    // Train a two-label model with the CLI, and publish it base64-encoded under a KV key.
    const dir = mkdtempSync(path.join(tmpdir(), "taskrouter-model-"));
    const rows = [];
    for (let i = 0; i < 20; i++) {
      rows.push({ text: `where is my parcel number ${i}, the delivery is late`, label: "shipping" });
      rows.push({ text: `please cancel my plan ${i} and close the account`, label: "cancellation" });
    }
    writeFileSync(path.join(dir, "data.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
    execFileSync(CLI_BIN, ["train", path.join(dir, "data.jsonl"), "--out", path.join(dir, "m.trcls"), "--buckets", "1024"]);
    const model = readFileSync(path.join(dir, "m.trcls")).toString("base64");
    const rules = testRules(mock.url, {
      models: { fast: { provider: "mock", model: "mock-fast" }, strong: { provider: "mock", model: "mock-strong" } },
      classifier: { model: "kv:models/support-v1", min_score: 0.5 },
      routes: [{ name: "cancel", when: { task: "cancellation" }, then: "strong" }],
      default: "fast",
    });
    worker = await startWorker({ rules, kvEntries: { "models/support-v1": model } });
  });
  after(async () => {
    await worker?.stop();
    await mock?.stop();
  });

  test("the rules' KV model labels requests with its own labels", async () => {
    const r = await chat(worker.url, { model: "auto", messages: userMessage("I want to cancel my plan and close my account") });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-router-task"), "cancellation");
    assert.equal(r.headers.get("x-router-rule"), "cancel");
  });
});
