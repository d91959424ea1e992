//! The shell's JavaScript helpers. Each does in one call what the bindings would do in one
//! boundary crossing per header, per blob or per property: every string that crosses is decoded
//! or encoded on its own and every object handle goes through the externref table, which on a
//! request with a dozen headers and a 30-field data point cost more than the routing itself.
//! Lists cross as one JSON string; byte slices cross as views and are copied on the JS side.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
export function respond(status, headers, body) {
  return new Response(body.slice(), { status, headers: JSON.parse(headers) });
}
export function respondStream(status, headers, stream) {
  return new Response(stream, { status, headers: JSON.parse(headers) });
}
export function bytes(view) {
  return view.slice();
}
export function send(url, headers, body, signal) {
  return fetch(url, { method: "POST", headers: JSON.parse(headers), body: body.slice(), signal });
}
export function head(response) {
  const h = response.headers;
  return JSON.stringify([h.get("content-type"), h.get("retry-after"), h.get("retry-after-ms")]);
}
export function headerList(request) {
  return JSON.stringify([...request.headers]);
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
    /// A `Uint8Array` copy of the bytes.
    pub fn bytes(view: &[u8]) -> JsValue;
    /// `fetch(url, {method: "POST", headers, body, signal})`; `headers` is a JSON list of pairs.
    pub fn send(url: &str, headers: &str, body: &[u8], signal: &JsValue) -> js_sys::Promise;
    /// `[content-type, retry-after, retry-after-ms]` of a response as JSON (`null` when absent):
    /// the headers in `ports::UPSTREAM_HEADERS`.
    pub fn head(response: &JsValue) -> String;
    /// A request's headers as a JSON list of `[name, value]` (names in lower case).
    #[wasm_bindgen(js_name = headerList)]
    pub fn header_list(request: &JsValue) -> String;
    /// `dataset.writeDataPoint({indexes: [index], blobs, doubles})`; `blobs` is a JSON list.
    #[wasm_bindgen(catch, js_name = writePoint)]
    pub fn write_point(
        dataset: &JsValue,
        index: &str,
        blobs: &str,
        doubles: &[f64],
    ) -> Result<JsValue, JsValue>;
}
