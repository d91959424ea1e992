//! Outgoing fetch to providers as the core's `Upstream`, with timeouts enforced by aborting the
//! fetch. The response stays a Workers `Response` so a streamed body can be handed to the client
//! without being copied into wasm memory.

use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

pub struct Fetcher;

/// A provider's response and the controller that can abort it.
pub struct UpstreamBody {
    pub response: Response,
    abort: AbortController,
}

impl Upstream for Fetcher {
    type Body = UpstreamBody;

    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
        let net = |e: worker::Error| FetchError::Network(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(net)?;
        }
        let body = js_sys::Uint8Array::from(request.body.as_slice());
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let outgoing = Request::new_with_init(&request.url, &init).map_err(net)?;
        let abort = AbortController::default();
        let signal = abort.signal();
        let fetch = Fetch::Request(outgoing);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        // Bound, not returned directly: the unfinished future inside borrows locals.
        let outcome = match select(sending, timer).await {
            Either::Left((Ok(response), _)) => Ok(UpstreamResponse {
                status: response.status_code(),
                headers: response.headers().entries().collect(),
                body: UpstreamBody { response, abort },
            }),
            Either::Left((Err(e), _)) => Err(net(e)),
            Either::Right(_) => {
                abort.abort();
                Err(FetchError::Timeout)
            }
        };
        outcome
    }

    async fn read_all(&self, body: UpstreamBody, timeout_ms: u64) -> Result<Vec<u8>, FetchError> {
        let UpstreamBody {
            mut response,
            abort,
        } = body;
        let reading = Box::pin(response.bytes());
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        let outcome = match select(reading, timer).await {
            Either::Left((result, _)) => result.map_err(|e| FetchError::Network(e.to_string())),
            Either::Right(_) => {
                abort.abort();
                Err(FetchError::Timeout)
            }
        };
        outcome
    }
}
