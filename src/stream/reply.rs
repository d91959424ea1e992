//! A committed stream as the core hands it to the shell: the client bytes already produced, the
//! rest of the upstream body, and the watch that turns each further chunk into client bytes.

use crate::http::Reply;
use crate::rules::Price;
use crate::stream::watch::StreamWatch;

/// A reply whose body may be a committed stream of upstream body `B`.
pub type ChatReply<B> = Reply<Box<Streamed<B>>>;

/// A streamed answer the router has committed to.
#[derive(Debug)]
pub struct Streamed<B> {
    /// Client bytes already produced from the first upstream chunks.
    pub prefix: Vec<u8>,
    /// The rest of the upstream body.
    pub body: B,
    /// Decides what each further chunk becomes, and how the stream ended.
    pub watch: StreamWatch,
    /// Chunk wait limit once streaming (the attempt's timeout).
    pub idle_timeout_ms: u64,
    /// For the cost, once the final usage is known.
    pub price: Option<Price>,
}
