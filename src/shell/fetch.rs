//! Outgoing fetch to providers as the core's `Upstream`, with timeouts enforced by aborting the
//! fetch. Whole bodies are read in one call; streamed bodies chunk by chunk.

use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::time::Duration;
use worker::{
    AbortController, ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit, Response,
};

pub struct Fetcher;

/// A provider's response, the controller that can abort it, and its body as a stream once read so.
pub struct UpstreamBody {
    response: Response,
    abort: Option<AbortController>,
    stream: Option<ByteStream>,
}

impl UpstreamBody {
    fn abort(&mut self) {
        if let Some(a) = self.abort.take() {
            a.abort();
        }
    }
}

fn net(e: worker::Error) -> FetchError {
    FetchError::Network(e.to_string())
}

impl Upstream for Fetcher {
    type Body = UpstreamBody;

    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<UpstreamBody>, FetchError> {
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
                body: UpstreamBody {
                    response,
                    abort: Some(abort),
                    stream: None,
                },
            }),
            Either::Left((Err(e), _)) => Err(net(e)),
            Either::Right(_) => {
                abort.abort();
                Err(FetchError::Timeout)
            }
        };
        outcome
    }

    async fn read_all(
        &self,
        mut body: UpstreamBody,
        timeout_ms: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let reading = Box::pin(body.response.bytes());
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        let outcome = match select(reading, timer).await {
            Either::Left((result, _)) => result.map_err(net),
            Either::Right(_) => Err(FetchError::Timeout),
        };
        if outcome == Err(FetchError::Timeout) {
            body.abort();
        }
        outcome
    }

    async fn next_chunk(
        &self,
        body: &mut UpstreamBody,
        timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        if body.stream.is_none() {
            body.stream = Some(body.response.stream().map_err(net)?);
        }
        let Some(stream) = body.stream.as_mut() else {
            return Ok(None);
        };
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        let outcome = match select(stream.next(), timer).await {
            Either::Left((Some(Ok(bytes)), _)) => Ok(Some(bytes)),
            Either::Left((Some(Err(e)), _)) => Err(net(e)),
            Either::Left((None, _)) => Ok(None),
            Either::Right(_) => Err(FetchError::Timeout),
        };
        if outcome == Err(FetchError::Timeout) {
            body.abort();
        }
        outcome
    }
}
