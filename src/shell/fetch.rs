//! Outgoing fetch to providers as the core's `Upstream`. The call itself lives on the JavaScript
//! side (`glue.rs`, `Call`): the fetch, its abort controller and one deadline timer shared by
//! every wait on it (the answer, then its body or its first events), whole bodies in one
//! `arrayBuffer()`, streamed bodies chunk by chunk from one reader, and only the response headers
//! the core reads copied in. Each wait is one promise here; a timer or a select from Rust would
//! add a promise and callback closures per wait. Once committed, a stream's loop in `glue.rs`
//! keeps its own idle timer. Workers AI models run through the `AI` binding the same way
//! (`glue::run_ai`): the binding's answer is made a `Response` on the JavaScript side, so waits,
//! reads and streams are the same code.

/// The Workers AI binding's name (wrangler.toml: `[ai] binding = "AI"`).
pub const AI_BINDING: &str = "AI";

use super::glue;
use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse, UPSTREAM_HEADERS};
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub struct Fetcher {
    /// The `AI` binding, when the Worker has one.
    ai: Option<JsValue>,
}

impl Fetcher {
    pub fn new(env: &worker::Env) -> Fetcher {
        let name = JsValue::from_str(AI_BINDING);
        let ai = js_sys::Reflect::get(env, &name)
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null());
        Fetcher { ai }
    }

    /// The status and the headers the core reads (`UPSTREAM_HEADERS`) of a call's answer.
    fn answer(call: JsValue) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
        let body = UpstreamBody { call };
        let (status, values): (u16, [Option<String>; UPSTREAM_HEADERS.len()]) =
            serde_json::from_str(&glue::head(&body.call))
                .map_err(|e| FetchError::Network(format!("reading the answer's head: {e}")))?;
        let headers = UPSTREAM_HEADERS
            .iter()
            .zip(values)
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect();
        Ok(UpstreamResponse {
            status,
            headers,
            body,
        })
    }
}

/// A provider's answer: the JavaScript call that fetched it (its response, reader, controller
/// and timer). Dropped, it stops the call's timer.
pub struct UpstreamBody {
    call: JsValue,
}

impl UpstreamBody {
    /// The call, for the stream loop in `glue::pump_stream` (which stops its timer).
    pub fn call(&self) -> &JsValue {
        &self.call
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        glue::stop_call(&self.call);
    }
}

/// A rejected wait: `null` when its time ran out (the call is aborted), else the message.
fn failure(e: JsValue) -> FetchError {
    if e.is_null() {
        return FetchError::Timeout;
    }
    FetchError::Network(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

impl Upstream for Fetcher {
    type Body = UpstreamBody;

    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
        let headers = serde_json::to_string(&request.headers)
            .map_err(|e| FetchError::Network(e.to_string()))?;
        let sending = glue::send(&request.url, &headers, &request.body, timeout_ms as f64);
        let call = JsFuture::from(sending).await.map_err(failure)?;
        Self::answer(call)
    }

    async fn run_ai(
        &self,
        model: &str,
        input: Vec<u8>,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
        let Some(ai) = &self.ai else {
            return Err(FetchError::NotBound(format!(
                "the Worker has no {AI_BINDING} binding to run {model} (wrangler.toml: [ai] binding = \"{AI_BINDING}\")"
            )));
        };
        let input = String::from_utf8_lossy(&input);
        let running = glue::run_ai(ai, model, &input, timeout_ms as f64);
        let call = JsFuture::from(running).await.map_err(failure)?;
        Self::answer(call)
    }

    async fn read_all(&self, body: UpstreamBody, timeout_ms: u64) -> Result<Vec<u8>, FetchError> {
        let bytes = JsFuture::from(glue::read_all(&body.call, timeout_ms as f64))
            .await
            .map_err(failure)?;
        Ok(bytes.unchecked_into::<Uint8Array>().to_vec())
    }

    async fn next_chunk(
        &self,
        body: &mut UpstreamBody,
        timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let chunk = JsFuture::from(glue::read_chunk(&body.call, timeout_ms as f64))
            .await
            .map_err(failure)?;
        if chunk.is_null() {
            return Ok(None);
        }
        Ok(Some(chunk.unchecked_into::<Uint8Array>().to_vec()))
    }
}
