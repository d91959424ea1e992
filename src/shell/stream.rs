//! Streaming a committed answer to the client: the bytes read while deciding to commit, then each
//! further upstream chunk as the core's `StreamWatch` turns it into client bytes, ending with an
//! error event if the provider breaks off. When the stream ends (or the client leaves), the
//! request's record is finished and handed over for logging and analytics.
//!
//! The read loop is JavaScript (`glue::pump_stream`): per chunk it makes one call into `Pump`
//! here (and a second only when the chunk was rewritten) and writes the chunk, or what it became,
//! into a native stream, the client's body. Driving it from Rust
//! futures cost a promise, two callback closures and a timer per chunk, and a JavaScript stream as
//! the body kept every chunk's garbage until the end: workerd's memory grew with the stream.

use super::fetch::UpstreamBody;
use super::glue;
use crate::record::analytics::RequestRecord;
use crate::rules::Price;
use crate::stream::reply::Streamed;
use crate::stream::watch::{Outcome, StreamWatch};
use futures_channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

/// What the JavaScript loop calls. Settled on every ending (`end`, or `leave` when the client
/// goes), then freed by the loop; `ended` fires once the record is complete.
#[wasm_bindgen]
pub struct Pump {
    watch: StreamWatch,
    price: Option<Price>,
    record: Rc<RefCell<RequestRecord>>,
    ended: Option<oneshot::Sender<()>>,
    /// What the last chunk became, when it is not the chunk itself (`take`).
    out: Vec<u8>,
}

/// `chunk`'s answer: bit 0 set when the client bytes are not the chunk itself (`take` gives
/// them), bit 1 when the answer is complete (or broken off).
const REWRITTEN: u32 = 1;
const DONE: u32 = 2;

#[wasm_bindgen]
impl Pump {
    /// Watch one upstream chunk. Most chunks go on unchanged: then the loop passes the chunk it
    /// holds, and one call per chunk is all that crosses (no copy back, no second call to ask
    /// whether the answer ended).
    pub fn chunk(&mut self, bytes: &[u8]) -> u32 {
        let out = self.watch.on_chunk(bytes);
        let mut code = 0;
        if out != bytes {
            self.out = out;
            code |= REWRITTEN;
        }
        if self.watch.outcome != Outcome::Running {
            self.finish();
            code |= DONE;
        }
        code
    }

    /// The client bytes the last chunk became (often none), when `chunk` said they differ.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The last client bytes: at the upstream's end, or after `error` (`"Timeout"` when the
    /// provider fell silent for the idle timeout) broke it off.
    pub fn end(&mut self, error: Option<String>) -> Vec<u8> {
        let out = match error {
            None => self.watch.on_end(),
            Some(why) => self.watch.on_error(&why),
        };
        self.finish();
        out
    }

    /// The client left (or the loop failed): settle what was produced so far. The loop calls
    /// this before it frees the pump; after the end it changes nothing.
    pub fn leave(&mut self) {
        self.watch.on_client_gone();
        self.finish();
    }
}

impl Pump {
    fn finish(&mut self) {
        if let Some(tx) = self.ended.take() {
            self.record
                .borrow_mut()
                .finish_stream(&self.watch, self.price);
            let _ = tx.send(());
        }
    }
}

/// The client's byte stream; `ended` fires when the record is settled, however the stream ended
/// (it is cancelled only if the pump is dropped unsettled).
pub fn client_stream(
    streamed: Streamed<UpstreamBody>,
    record: Rc<RefCell<RequestRecord>>,
    ended: oneshot::Sender<()>,
) -> Result<web_sys::ReadableStream, JsValue> {
    let Streamed {
        prefix,
        body,
        watch,
        idle_timeout_ms,
        price,
    } = streamed;
    let pump = Pump {
        watch,
        price,
        record,
        ended: Some(ended),
        out: Vec::new(),
    };
    glue::pump_stream(
        body.call(),
        &prefix,
        idle_timeout_ms as f64,
        JsValue::from(pump),
    )
}
