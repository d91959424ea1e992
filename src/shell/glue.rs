//! The shell's JavaScript helpers. Each does in one call what the bindings would do in one
//! boundary crossing per header, per blob or per property (every string that crosses is decoded or
//! encoded on its own, and every object handle goes through the externref table). Lists cross as
//! one JSON string; byte slices cross as views and are copied on the JavaScript side. The stream
//! loop lives here too (`pumpStream`, driven by `stream::Pump`).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
// Built with append(): in workerd that costs about half of passing the list of pairs as the init.
// Name-value pairs (repeated names kept) are a HeadersInit: the runtime builds the headers in
// one call, rather than one `append` call per header.
function headersOf(list) {
  return JSON.parse(list);
}
export function respond(status, headers, body) {
  return new Response(body.slice(), { status, headers: headersOf(headers) });
}
export function respondStream(status, headers, stream) {
  return new Response(stream, { status, headers: headersOf(headers) });
}
// One provider call: its fetch, the controller that aborts it, and one timer for every wait on it
// (the answer, then its body or first events), re-armed only when it fires early. A wait that runs
// out aborts the fetch and rejects with null; other failures reject with their message.
class Call {
  constructor() {
    this.abort = new AbortController();
    this.response = null;
    this.reader = null;
    this.timer = null;
    this.firesAt = 0;
    this.deadline = 0;
    this.waiting = false;
    this.timedOut = false;
  }
  wait(promise, ms) {
    this.deadline = Date.now() + ms;
    // A timer firing after the new deadline is replaced (1 ms of slack: callers pass whole
    // milliseconds of what remains of the same deadline); one firing before it is kept.
    if (this.timer !== null && this.firesAt > this.deadline + 1) this.stop();
    if (this.timer === null) this.arm(ms);
    this.waiting = true;
    return promise.then(
      (value) => { this.waiting = false; return value; },
      (e) => { this.waiting = false; throw this.timedOut ? null : String(e); },
    );
  }
  arm(ms) {
    this.firesAt = Date.now() + ms;
    this.timer = setTimeout(() => this.fire(), ms);
  }
  fire() {
    this.timer = null;
    if (!this.waiting) return;
    const left = this.deadline - Date.now();
    if (left > 1) this.arm(left);
    else { this.timedOut = true; this.abort.abort(); }
  }
  stop() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
export function send(url, headers, body, ms) {
  const call = new Call();
  const sent = fetch(url, { method: "POST", headers: headersOf(headers), body: body.slice(), signal: call.abort.signal });
  return call.wait(sent, ms).then((response) => { call.response = response; return call; });
}
// A Workers AI run as a call: what the binding answers becomes a Response (a stream as an event
// stream, an object as JSON), and an error it raises the HTTP status its code stands for
// (developers.cloudflare.com/workers-ai/platform/errors), so the core reads it as any provider's.
// "No such model" (5007) is 404 here, not the table's 400: the target is wrong, not the request,
// so a fallback may serve it; timeouts (3007, 3008) are 504.
const AI_STATUS = { 5007: 404, 5004: 400, 3039: 400, 3003: 400, 5018: 403, 5016: 403, 3023: 403, 3041: 403,
                    5019: 405, 5005: 405, 3042: 404, 3006: 413, 3007: 504, 3008: 504, 3036: 429, 3040: 429 };
function aiAnswer(out) {
  if (out instanceof ReadableStream) return new Response(out, { headers: { "content-type": "text/event-stream" } });
  return new Response(JSON.stringify(out), { headers: { "content-type": "application/json" } });
}
function aiFailure(e) {
  const message = String(e?.message ?? e);
  const code = (message.match(/\b([35]0\d\d)\b/) ?? [])[1];
  const status = AI_STATUS[code] ?? 500;
  const body = JSON.stringify({ error: { message, code: code ?? null, type: status === 429 ? "rate_limit_error" : null } });
  return new Response(body, { status, headers: { "content-type": "application/json" } });
}
export function runAi(ai, model, input, ms) {
  const call = new Call();
  const running = Promise.resolve().then(() => ai.run(model, JSON.parse(input))).then(aiAnswer, aiFailure);
  return call.wait(running, ms).then((response) => { call.response = response; return call; });
}
export function head(call) {
  const r = call.response, h = r.headers;
  return JSON.stringify([r.status, [h.get("content-type"), h.get("retry-after"), h.get("retry-after-ms")]]);
}
export function readAll(call, ms) {
  return call.wait(call.response.arrayBuffer(), ms).then((buffer) => { call.stop(); return new Uint8Array(buffer); });
}
export function readChunk(call, ms) {
  if (call.reader === null) {
    if (call.response.body === null) return Promise.resolve(null);
    call.reader = call.response.body.getReader();
  }
  return call.wait(call.reader.read(), ms).then((step) => {
    if (step.done) return null;
    if (step.value instanceof Uint8Array) return step.value;
    throw `the body gave a chunk that is not bytes: ${step.value}`;
  });
}
export function stopCall(call) {
  call.stop();
}
export function headerList(request) {
  return JSON.stringify([...request.headers]);
}
export function pumpStream(call, prefix, idleMs, pump) {
  // The call's own timer stops here; the stream keeps one idle timer, re-armed when it fires early
  // rather than once per chunk.
  call.stop();
  const abort = call.abort;
  let reader = call.reader ?? call.response.body?.getReader() ?? null;
  let timer = null, deadline = 0, reading = false, timedOut = false;
  const tick = () => {
    timer = null;
    if (!reading) return;
    const left = deadline - Date.now();
    if (left > 0) timer = setTimeout(tick, left);
    else { timedOut = true; abort.abort(); }
  };
  let closed = false;
  // `ended`: the loop reached the answer's end (its last event, the body's end, or the read that
  // failed). Otherwise the client left or the loop failed, and the provider's body is cancelled.
  const stop = (ended) => {
    if (closed) return;
    closed = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    // Settles what the provider produced so far if the answer had not ended (the client left).
    try { pump.leave(); } catch (e) { console.error(`stream: settling failed: ${e}`); }
    pump.free();
    const r = reader;
    reader = null;
    if (r === null) return;
    if (!ended) { r.cancel().catch(() => {}); return; }
    // After the last event the provider's body usually ends at once: reading to that end costs
    // workerd far less than cancelling the body (a 10-event stream 3.4 -> 2.4-2.7 ms of CPU,
    // docs/performance.md). Anything more the provider sends is not wanted.
    r.read().then((step) => { if (!step.done) r.cancel().catch(() => {}); }, () => {});
  };
  // The client's body is a native stream this loop writes into: with a JavaScript stream as the
  // body, workerd's memory grows with the stream's length (every chunk it pulled stays referenced
  // until the end); with this one it stays flat. Each write waits for the client to take the bytes.
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  // The client left (or the stream failed): stop reading and let the provider go.
  writer.closed.catch(() => { stop(false); abort.abort(); });
  const run = async () => {
    if (prefix.length) await writer.write(prefix.slice());
    while (!closed) {
      let out, last = false;
      if (reader === null) { out = pump.end(undefined); last = true; }
      else {
        reading = true;
        deadline = Date.now() + idleMs;
        if (timer === null) timer = setTimeout(tick, idleMs);
        let step;
        try { step = await reader.read(); } catch (e) { step = { error: timedOut ? "Timeout" : `Network(${e})` }; }
        reading = false;
        if (closed) return; // the client left while the read was pending
        if (step.error !== undefined) { out = pump.end(step.error); last = true; }
        else if (step.done) { out = pump.end(undefined); last = true; }
        else {
          // Bit 0: rewritten (the bytes are taken from the pump); bit 1: the answer is complete.
          const code = pump.chunk(step.value);
          out = code & 1 ? pump.take() : step.value;
          last = (code & 2) !== 0;
        }
      }
      if (last) stop(true);
      if (out.length) await writer.write(out);
      if (last) { await writer.close(); return; }
    }
  };
  // Should the pump throw, the pump and the provider's body are let go before the stream errors.
  run().catch((e) => { stop(false); abort.abort(); writer.abort(e).catch(() => {}); });
  return readable;
}
export function writePoint(dataset, index, blobs, doubles) {
  return dataset.writeDataPoint({ indexes: [index], blobs: JSON.parse(blobs), doubles: Array.from(doubles) });
}
"#)]
extern "C" {
    /// `new Response(body, {status, headers})`; `headers` is a JSON list of pairs.
    #[wasm_bindgen(catch)]
    pub fn respond(status: u16, headers: &str, body: &[u8]) -> Result<web_sys::Response, JsValue>;
    /// The same with a stream as the body.
    #[wasm_bindgen(catch, js_name = respondStream)]
    pub fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> Result<web_sys::Response, JsValue>;
    /// `fetch(url, {method: "POST", headers, body})` as a call whose waits time out: resolves to
    /// the call once the answer's head is in, or rejects (null: `ms` passed; else the message).
    /// `headers` is a JSON list of pairs.
    pub fn send(url: &str, headers: &str, body: &[u8], ms: f64) -> js_sys::Promise;
    /// `ai.run(model, input)` (`input` a JSON object) as a call, like `send`: its answer, or the
    /// error the binding raised, made a `Response`.
    #[wasm_bindgen(js_name = runAi)]
    pub fn run_ai(ai: &JsValue, model: &str, input: &str, ms: f64) -> js_sys::Promise;
    /// `[status, [content-type, retry-after, retry-after-ms]]` of a call's answer as JSON (`null`
    /// when absent): the headers in `ports::UPSTREAM_HEADERS`.
    pub fn head(call: &JsValue) -> String;
    /// The whole body as a `Uint8Array`, waiting at most `ms` (rejects as `send` does).
    #[wasm_bindgen(js_name = readAll)]
    pub fn read_all(call: &JsValue, ms: f64) -> js_sys::Promise;
    /// The body's next chunk as a `Uint8Array`, or null at its end, waiting at most `ms`.
    #[wasm_bindgen(js_name = readChunk)]
    pub fn read_chunk(call: &JsValue, ms: f64) -> js_sys::Promise;
    /// Stop the call's timer (it is done with, or dropped).
    #[wasm_bindgen(js_name = stopCall)]
    pub fn stop_call(call: &JsValue);
    /// A request's headers as a JSON list of `[name, value]` (names in lower case).
    #[wasm_bindgen(js_name = headerList)]
    pub fn header_list(request: &JsValue) -> String;
    /// The client's stream: `prefix`, then what `pump` (a `stream::Pump`) makes of each chunk of
    /// the call's body, until the pump is done or the body ends; a read waiting `idle_ms` aborts
    /// the call and ends the pump with `"Timeout"`.
    #[wasm_bindgen(catch, js_name = pumpStream)]
    pub fn pump_stream(
        call: &JsValue,
        prefix: &[u8],
        idle_ms: f64,
        pump: JsValue,
    ) -> Result<web_sys::ReadableStream, JsValue>;
    /// `dataset.writeDataPoint({indexes: [index], blobs, doubles})`; `blobs` is a JSON list.
    #[wasm_bindgen(catch, js_name = writePoint)]
    pub fn write_point(
        dataset: &JsValue,
        index: &str,
        blobs: &str,
        doubles: &[f64],
    ) -> Result<JsValue, JsValue>;
}
