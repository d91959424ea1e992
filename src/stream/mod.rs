//! Streamed answers: the incremental SSE parser (`sse`) and the AWS event-stream framing
//! (`eventstream`, Bedrock's streams, turned into SSE events), the state machine that watches a
//! stream on its way to the client (`watch`), the Anthropic and Responses front doors'
//! re-encodings of it (`anthropic`, `responses`), and the committed stream handed to the shell
//! (`reply`).

pub mod anthropic;
pub mod eventstream;
pub mod reply;
pub mod responses;
pub mod sse;
pub mod watch;
