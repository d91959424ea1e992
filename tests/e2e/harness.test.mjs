// The harness itself: data points are read past the recorder's first page of KV keys, so tests
// that wait for more than 1,000 points, or look one up past the first page, see them all.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startMock, startWorker, testRules, chat, userMessage } from "./harness.mjs";

let mock;
let worker;
before(async () => {
  mock = await startMock();
  worker = await startWorker({ rules: testRules(mock.url) });
});
after(async () => {
  await worker?.stop();
  await mock?.stop();
});

test("dataPoints, waitForDataPoints and dataPointFor read every page of the recorder", async () => {
  // 1,200 points as the recorder writes them (earlier keys), then one real request's point.
  for (let i = 0; i < 1200; i++) {
    const key = "000000000000001-" + String(i).padStart(6, "0");
    await worker.points.put(key, JSON.stringify({ indexes: ["seeded"], blobs: [`seeded-${i}`], doubles: [] }));
  }
  const r = await chat(worker.url, { model: "auto", messages: userMessage() });
  assert.equal(r.status, 200);
  const point = await worker.dataPointFor(r);
  assert.equal(point.blobs[9], r.headers.get("x-router-request-id"), "found past the first 1,000 keys");
  const all = await worker.waitForDataPoints(1201);
  assert.equal(all.length, 1201);
  assert.equal(all[0].blobs[0], "seeded-0", "oldest first");
  assert.equal(all[1199].blobs[0], "seeded-1199");
});
