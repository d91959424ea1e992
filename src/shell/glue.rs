//! The shell's JavaScript helpers. Each does in one call what the bindings would do in one
//! boundary crossing per header, per blob or per property (every string that crosses is decoded or
//! encoded on its own, and every object handle goes through the externref table). Lists cross as
//! one JSON string; byte slices cross as views and are copied on the JavaScript side. The stream
//! loop lives here too (`pumpStream`, driven by `stream::Pump`).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
// Built with append(): in workerd that costs about half of passing the list of pairs as the init.
function headersOf(list) {
  const headers = new Headers();
  for (const [name, value] of JSON.parse(list)) headers.append(name, value);
  return headers;
}
export function respond(status, headers, body) {
  return new Response(body.slice(), { status, headers: headersOf(headers) });
}
export function respondStream(status, headers, stream) {
  return new Response(stream, { status, headers: headersOf(headers) });
}
export function send(url, headers, body, signal) {
  return fetch(url, { method: "POST", headers: headersOf(headers), body: body.slice(), signal });
}
export function head(response) {
  const h = response.headers;
  return JSON.stringify([h.get("content-type"), h.get("retry-after"), h.get("retry-after-ms")]);
}
export function headerList(request) {
  return JSON.stringify([...request.headers]);
}
export function pumpStream(reader, prefix, idleMs, abort, pump) {
  // One idle timer, re-armed when it fires early rather than once per chunk.
  let timer = null, deadline = 0, reading = false, timedOut = false;
  const tick = () => {
    timer = null;
    if (!reading) return;
    const left = deadline - Date.now();
    if (left > 0) timer = setTimeout(tick, left);
    else { timedOut = true; abort?.abort(); }
  };
  let closed = false;
  const stop = () => {
    if (closed) return;
    closed = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pump.free();
    // Whatever the provider still sends after the answer ended is not wanted.
    reader?.cancel().catch(() => {});
  };
  let first = prefix.length ? prefix.slice() : null;
  const next = async (controller) => {
    if (first !== null) { controller.enqueue(first); first = null; return; }
    for (;;) {
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
        else { out = pump.chunk(step.value) ?? step.value; last = pump.done(); }
      }
      if (out.length) controller.enqueue(out);
      if (last) { stop(); controller.close(); return; }
      if (out.length) return;
    }
  };
  return new ReadableStream({
    // Should the pump throw, the pump and the provider's body are let go before the stream errors.
    pull: (controller) => next(controller).catch((e) => { stop(); abort?.abort(); throw e; }),
    cancel() { stop(); abort?.abort(); },
  }, { highWaterMark: 0 });
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
    /// `fetch(url, {method: "POST", headers, body, signal})`; `headers` is a JSON list of pairs.
    pub fn send(url: &str, headers: &str, body: &[u8], signal: &JsValue) -> js_sys::Promise;
    /// `[content-type, retry-after, retry-after-ms]` of a response as JSON (`null` when absent):
    /// the headers in `ports::UPSTREAM_HEADERS`.
    pub fn head(response: &JsValue) -> String;
    /// A request's headers as a JSON list of `[name, value]` (names in lower case).
    #[wasm_bindgen(js_name = headerList)]
    pub fn header_list(request: &JsValue) -> String;
    /// The client's stream: `prefix`, then what `pump` (a `stream::Pump`) makes of each chunk
    /// `reader` gives, until the pump is done or the body ends; a read waiting `idle_ms` aborts
    /// `abort` and ends the pump with `"Timeout"`.
    #[wasm_bindgen(catch, js_name = pumpStream)]
    pub fn pump_stream(
        reader: &JsValue,
        prefix: &[u8],
        idle_ms: f64,
        abort: &JsValue,
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
