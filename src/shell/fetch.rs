//! Outgoing fetch to providers as the core's `Upstream`. The response stays a Workers `Response`
//! so a streamed body can be handed to the client without being copied into wasm memory.

use crate::ports::{FetchError, Upstream, UpstreamRequest, UpstreamResponse};
use worker::{Fetch, Headers, Method, Request, RequestInit, Response};

pub struct Fetcher;

impl Upstream for Fetcher {
    type Body = Response;

    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<Response>, FetchError> {
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
        let response = Fetch::Request(outgoing).send().await.map_err(net)?;
        Ok(UpstreamResponse {
            status: response.status_code(),
            headers: response.headers().entries().collect(),
            body: response,
        })
    }

    async fn read_all(&self, mut body: Response) -> Result<Vec<u8>, FetchError> {
        body.bytes()
            .await
            .map_err(|e| FetchError::Network(e.to_string()))
    }
}
