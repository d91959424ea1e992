//! Outgoing fetch to providers as the core's `Upstream`, on the runtime's own objects (no wrapper
//! types in between): whole bodies in one `arrayBuffer()`, streamed bodies chunk by chunk from one
//! reader, only the response headers the core reads copied in, and timeouts enforced by aborting.
//!
//! Each timer is a closure and a runtime timer, so each response keeps one: the answer's deadline
//! is set when it is sent and reused while the body is read (and while its first events are peeked
//! at); once committed, the stream loop in `glue.rs` keeps its own idle timer.

use super::glue;
use super::timer::{within, Timer};
use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse, UPSTREAM_HEADERS};
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader, Response};

pub struct Fetcher;

/// A provider's response, the controller that can abort it, its reader once streamed, and the
/// timer of its current deadline.
pub struct UpstreamBody {
    response: Response,
    abort: Option<AbortController>,
    reader: Option<ReadableStreamDefaultReader>,
    timer: Option<Timer>,
}

impl UpstreamBody {
    /// The body's reader (`null` when there is no body) and the controller that aborts the fetch,
    /// for the stream loop in `glue::pump_stream`.
    pub fn into_reader(self) -> (JsValue, JsValue) {
        let reader = match self.reader {
            Some(reader) => reader.into(),
            None => self
                .response
                .body()
                .map_or(JsValue::NULL, |body| body.get_reader().into()),
        };
        (reader, self.abort.map_or(JsValue::NULL, Into::into))
    }

    fn abort(&mut self) {
        if let Some(a) = self.abort.take() {
            a.abort();
        }
    }
}

fn net(e: JsValue) -> FetchError {
    FetchError::Network(
        e.as_string()
            .or_else(|| {
                e.dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.to_string()))
            })
            .unwrap_or_else(|| format!("{e:?}")),
    )
}

impl Upstream for Fetcher {
    type Body = UpstreamBody;

    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
        let abort = AbortController::new().map_err(net)?;
        let headers = serde_json::to_string(&request.headers)
            .map_err(|e| FetchError::Network(e.to_string()))?;
        let sending = glue::send(&request.url, &headers, &request.body, &abort.signal());
        let mut timer = None;
        let sent = within(&mut timer, JsFuture::from(sending), timeout_ms).await;
        let response: Response = match sent {
            Some(Ok(value)) => value.unchecked_into(),
            Some(Err(e)) => return Err(net(e)),
            None => {
                abort.abort();
                return Err(FetchError::Timeout);
            }
        };
        // The headers the core reads (`UPSTREAM_HEADERS`), in one call.
        let values: [Option<String>; UPSTREAM_HEADERS.len()] =
            serde_json::from_str(&glue::head(&response)).unwrap_or_default();
        let headers = UPSTREAM_HEADERS
            .iter()
            .zip(values)
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect();
        Ok(UpstreamResponse {
            status: response.status(),
            headers,
            body: UpstreamBody {
                response,
                abort: Some(abort),
                reader: None,
                timer,
            },
        })
    }

    async fn read_all(
        &self,
        mut body: UpstreamBody,
        timeout_ms: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let reading = match body.response.array_buffer() {
            Ok(promise) => JsFuture::from(promise),
            Err(e) => return Err(net(e)),
        };
        match within(&mut body.timer, reading, timeout_ms).await {
            Some(Ok(buffer)) => Ok(Uint8Array::new(&buffer).to_vec()),
            Some(Err(e)) => Err(net(e)),
            None => {
                body.abort();
                Err(FetchError::Timeout)
            }
        }
    }

    async fn next_chunk(
        &self,
        body: &mut UpstreamBody,
        timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        if body.reader.is_none() {
            let Some(stream) = body.response.body() else {
                return Ok(None);
            };
            body.reader = Some(stream.get_reader().unchecked_into());
        }
        let Some(reader) = body.reader.as_ref() else {
            return Ok(None);
        };
        let reading = JsFuture::from(reader.read());
        let outcome = match within(&mut body.timer, reading, timeout_ms).await {
            Some(Ok(result)) => chunk_of(&result),
            Some(Err(e)) => Err(net(e)),
            None => Err(FetchError::Timeout),
        };
        if outcome == Err(FetchError::Timeout) {
            body.abort();
        }
        outcome
    }
}

/// A reader's `{done, value}`: the bytes, or `None` at the end.
fn chunk_of(result: &JsValue) -> Result<Option<Vec<u8>>, FetchError> {
    let done = Reflect::get(result, &JsValue::from_str("done")).map_err(net)?;
    if done.as_bool() == Some(true) {
        return Ok(None);
    }
    let value = Reflect::get(result, &JsValue::from_str("value")).map_err(net)?;
    match value.dyn_into::<Uint8Array>() {
        Ok(bytes) => Ok(Some(bytes.to_vec())),
        Err(other) => Err(FetchError::Network(format!(
            "the body gave a chunk that is not bytes: {other:?}"
        ))),
    }
}
