//! Streaming a committed answer to the client: the bytes read while deciding to commit, then each
//! further upstream chunk as the core's `StreamWatch` turns it into client bytes, ending with an
//! error event if the provider breaks off. When the stream ends (or the client leaves), the
//! request's record is finished and handed over for logging and analytics.

use super::fetch::{Fetcher, UpstreamBody};
use crate::analytics::RequestRecord;
use crate::http::Streamed;
use crate::ports::Upstream;
use crate::stream::Outcome;
use futures_channel::oneshot;
use futures_util::stream::{unfold, Stream};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

struct Pump {
    streamed: Streamed<UpstreamBody>,
    done: bool,
    record: Rc<RefCell<RequestRecord>>,
    ended: Option<oneshot::Sender<()>>,
}

impl Pump {
    fn finish(&mut self) {
        self.record
            .borrow_mut()
            .finish_stream(&self.streamed.watch, self.streamed.price, false);
        if let Some(tx) = self.ended.take() {
            let _ = tx.send(());
        }
    }
}

/// The client's byte stream (chunks as `Uint8Array`s); `ended` fires when it is complete. If the client leaves first, the
/// stream is dropped and `ended` is cancelled instead.
pub fn pump(
    streamed: Streamed<UpstreamBody>,
    record: Rc<RefCell<RequestRecord>>,
    ended: oneshot::Sender<()>,
) -> impl Stream<Item = Result<JsValue, JsValue>> {
    let mut first = streamed.prefix.clone();
    let state = Pump {
        streamed: Streamed {
            prefix: Vec::new(),
            ..streamed
        },
        done: false,
        record,
        ended: Some(ended),
    };
    unfold(state, move |mut p| {
        let prefix = std::mem::take(&mut first);
        async move {
            if !prefix.is_empty() {
                return Some((Ok(bytes(&prefix)), p));
            }
            loop {
                if p.done {
                    p.finish();
                    return None;
                }
                let idle = p.streamed.idle_timeout_ms;
                let out = match Fetcher.next_chunk(&mut p.streamed.body, idle).await {
                    Ok(Some(bytes)) => p.streamed.watch.on_chunk(&bytes),
                    Ok(None) => p.streamed.watch.on_end(),
                    Err(e) => p.streamed.watch.on_error(&format!("{e:?}")),
                };
                if p.streamed.watch.outcome != Outcome::Running {
                    p.done = true;
                }
                if !out.is_empty() {
                    return Some((Ok(bytes(&out)), p));
                }
            }
        }
    })
}

/// A chunk for the client's stream: a `Uint8Array` copy (the runtime keeps it after we return).
fn bytes(chunk: &[u8]) -> JsValue {
    super::glue::bytes(chunk)
}
