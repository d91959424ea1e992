//! Outgoing fetch to providers as the core's `Upstream`. The call itself lives on the JavaScript
//! side (`glue.rs`, `Call`): the fetch, its abort controller and one deadline timer shared by
//! every wait on it (the answer, then its body or its first events), whole bodies in one
//! `arrayBuffer()`, streamed bodies chunk by chunk from one reader, and only the response headers
//! the core reads copied in. Each wait is one promise here; a timer or a select from Rust would
//! add a promise and callback closures per wait. Once committed, a stream's loop in `glue.rs`
//! keeps its own idle timer.

use super::glue;
use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse, UPSTREAM_HEADERS};
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub struct Fetcher;

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
        let body = UpstreamBody { call };
        // The status and the headers the core reads (`UPSTREAM_HEADERS`), in one call.
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
