//! Converting between Workers requests/responses and the core's `Incoming`/`Reply`.

use super::glue;
use crate::http::{Body, Incoming, Method};
use wasm_bindgen::JsValue;
use worker::Request;

/// Read the request; the body only when its declared length is within `max_body_bytes`.
pub async fn incoming(mut req: Request, max_body_bytes: usize) -> Incoming {
    // One string for every header (the runtime gives names in lower case).
    let headers: Vec<(String, String)> =
        serde_json::from_str(&glue::header_list(req.inner())).unwrap_or_default();
    let declared =
        crate::ports::header(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let body = match declared {
        Some(n) if n > max_body_bytes as u64 => Body::TooLarge { declared: n },
        // An unreadable body is treated as empty, which the parser reports as invalid JSON.
        _ => Body::Bytes(req.bytes().await.unwrap_or_default()),
    };
    // Only the admin API takes query parameters: other paths skip parsing the URL.
    let path = req.path();
    let query = match path.starts_with(crate::fronts::admin::PREFIX) {
        true => (req.url().ok())
            .and_then(|u| u.query().map(str::to_string))
            .unwrap_or_default(),
        false => String::new(),
    };
    let cf = req.cf();
    let request_id = crate::ports::header(&headers, "cf-ray")
        .map(str::to_string)
        .unwrap_or_else(random_id);
    Incoming {
        method: Method::parse(req.method().as_ref()),
        path,
        query,
        body,
        request_id,
        colo: cf.map(|c| c.colo()).filter(|c| !c.is_empty()),
        country: cf.and_then(|c| c.country()),
        headers,
    }
}

/// A request id when there is no `cf-ray` (local development): 16 hex digits from crypto.getRandomValues.
fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom_js(&mut bytes).is_err() {
        let t = js_sys::Date::now() as u64;
        bytes = t.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn getrandom_js(buf: &mut [u8]) -> std::result::Result<(), ()> {
    use wasm_bindgen::JsCast;
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| ())?;
    let get = js_sys::Reflect::get(&crypto, &"getRandomValues".into()).map_err(|_| ())?;
    let get: js_sys::Function = get.dyn_into().map_err(|_| ())?;
    let array = js_sys::Uint8Array::new_with_length(buf.len() as u32);
    get.call1(&crypto, &array).map_err(|_| ())?;
    array.copy_to(buf);
    Ok(())
}

/// The answer on the runtime's own `Response`: headers and status in one call, the body copied once.
pub fn response(
    status: u16,
    headers: &[(String, String)],
    body: ResponseBody,
) -> std::result::Result<web_sys::Response, JsValue> {
    let list = serde_json::to_string(headers).map_err(|e| JsValue::from_str(&e.to_string()))?;
    match body {
        ResponseBody::Bytes(bytes) => glue::respond(status, &list, &bytes),
        ResponseBody::Stream(stream) => glue::respond_stream(status, &list, &stream),
    }
}

/// What a response carries: bytes, or a stream the runtime pulls from.
pub enum ResponseBody {
    Bytes(Vec<u8>),
    Stream(web_sys::ReadableStream),
}
