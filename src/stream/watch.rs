//! Watching a streamed (SSE) answer on its way to the client, as a pure state machine: upstream
//! bytes in, client bytes out. It decides whether the stream may be committed to (its first event
//! is content, not an error or an early end), captures the usage of the final event, drops the usage
//! chunk the router asked for when the client did not, and turns a stream that breaks after bytes
//! reached the client into an error event the OpenAI SDKs surface, never a clean `[DONE]`.

use crate::chat::usage::Usage;
use crate::providers::api::{StreamTranslator, Translated};
use crate::providers::errors::{classify_status, ErrorKind};
use crate::rules::provider::ProviderKind;
use crate::stream::anthropic;
use crate::stream::eventstream;
use crate::stream::responses::{self, Echo};
use crate::stream::sse::{Event, SseParser};
use serde_json::{json, Value};

/// What the first meaningful event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    Content,
    /// An error delivered inside a 200 event stream.
    Error(ErrorKind),
    /// `[DONE]` before any content.
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Completed,
    /// Broke after bytes reached the client: the reason, for logs and analytics.
    Broken(String),
    /// The client left before the answer ended.
    ClientGone,
}

#[derive(Debug)]
pub struct StreamWatch {
    parser: SseParser,
    /// Set when a target that speaks the Responses API streams to the Responses front door.
    passthrough: Option<Passthrough>,
    /// Set when the provider streams the AWS event-stream framing: its messages become SSE events.
    frames: Option<eventstream::Decoder>,
    /// Set when the provider streams its own events, which become OpenAI chunks here.
    translator: Option<Box<dyn StreamTranslator>>,
    /// Set when the client came through another front door: OpenAI chunks become its events.
    front: Option<Front>,
    client_wants_usage: bool,
    first: Option<First>,
    pub usage: Option<Usage>,
    /// Characters of answer text seen, for estimating usage a provider did not report.
    pub answer_chars: u64,
    pub outcome: Outcome,
    pub bytes_out: u64,
}

/// A Responses API stream passed through unchanged: what the watch needs to end it in kind.
#[derive(Debug, Default)]
struct Passthrough {
    response_id: String,
    next_sequence: u64,
}

impl Passthrough {
    /// `response.failed` and an `error` event the OpenAI SDKs raise, numbered after the last
    /// event passed on.
    fn failure(&mut self, message: &str) -> Vec<u8> {
        let error = json!({"type": "server_error", "code": INTERRUPTED, "message": message});
        let failed = json!({"type": "response.failed", "sequence_number": self.next_sequence,
            "response": {"id": self.response_id, "object": "response", "status": "failed",
                         "error": {"code": INTERRUPTED, "message": message}, "output": []}});
        let event = json!({"type": "error", "sequence_number": self.next_sequence + 1,
            "code": INTERRUPTED, "message": message, "param": null, "error": error});
        self.next_sequence += 2;
        format!("event: response.failed\ndata: {failed}\n\nevent: error\ndata: {event}\n\n")
            .into_bytes()
    }
}

/// The front door a stream is re-encoded for, when it is not chat completions.
#[derive(Debug)]
enum Front {
    Anthropic(anthropic::StreamAdapter),
    Responses(responses::StreamAdapter),
}

/// The code of the error event that ends a broken stream.
pub const INTERRUPTED: &str = "stream_interrupted";

impl StreamWatch {
    pub fn new(client_wants_usage: bool) -> Self {
        StreamWatch {
            parser: SseParser::new(),
            passthrough: None,
            frames: None,
            translator: None,
            front: None,
            client_wants_usage,
            first: None,
            usage: None,
            answer_chars: 0,
            outcome: Outcome::Running,
            bytes_out: 0,
        }
    }

    /// The watch for a streamed answer from this kind of provider: one that translates its
    /// events into OpenAI chunks when they are not already.
    pub fn for_provider(
        kind: ProviderKind,
        client_wants_usage: bool,
        id: &str,
        created: u64,
    ) -> Self {
        let api = crate::providers::api(kind);
        StreamWatch {
            translator: api.stream_translator(id, created),
            frames: api.event_stream_framing().then(eventstream::Decoder::new),
            ..StreamWatch::new(client_wants_usage)
        }
    }

    /// The watch for a Responses API stream passed through unchanged to the Responses front door.
    pub fn for_responses() -> Self {
        StreamWatch {
            passthrough: Some(Passthrough::default()),
            ..StreamWatch::new(true)
        }
    }

    /// Whether the stream is the Responses API's own, passed through.
    pub fn passes_responses(&self) -> bool {
        self.passthrough.is_some()
    }

    /// The model id chunks carry when the provider's stream does not name it.
    pub fn set_model(&mut self, model: &str) {
        if let Some(t) = self.translator.as_mut() {
            t.set_model(model);
        }
    }

    pub fn first(&self) -> Option<First> {
        self.first
    }

    /// Serve the Anthropic front door: what this watch emits from now on becomes Anthropic events
    /// (`already` is what it emitted before, converted too). The usage chunk is kept for the
    /// adapter, which reports it in `message_delta`.
    pub fn serve_anthropic_front(&mut self, already: &[u8]) -> Vec<u8> {
        self.serve_front(Front::Anthropic(anthropic::StreamAdapter::new()), already)
    }

    /// Serve the Responses front door the same way: from now on the Responses API's events, with
    /// `echo` (what the request said) repeated in each Response object.
    pub fn serve_responses_front(&mut self, already: &[u8], echo: Echo) -> Vec<u8> {
        self.serve_front(
            Front::Responses(responses::StreamAdapter::new(echo)),
            already,
        )
    }

    fn serve_front(&mut self, front: Front, already: &[u8]) -> Vec<u8> {
        self.client_wants_usage = true;
        self.front = Some(front);
        self.front_out(already.to_vec())
    }

    fn front_out(&mut self, out: Vec<u8>) -> Vec<u8> {
        match self.front.as_mut() {
            Some(Front::Anthropic(adapter)) => adapter.on_bytes(&out),
            Some(Front::Responses(adapter)) => adapter.on_bytes(&out),
            None => out,
        }
    }

    /// Feed upstream bytes; the bytes to send on to the client.
    pub fn on_chunk(&mut self, bytes: &[u8]) -> Vec<u8> {
        let out = self.on_chunk_openai(bytes);
        self.front_out(out)
    }

    fn on_chunk_openai(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.outcome != Outcome::Running {
            return Vec::new();
        }
        let sse;
        let bytes = match self.frames.as_mut().map(|d| d.push(bytes)) {
            None => bytes,
            Some(Err(why)) => return self.break_off(&why),
            Some(Ok(messages)) => {
                sse = messages
                    .iter()
                    .flat_map(|m| format!("data: {}\n\n", m.to_json()).into_bytes())
                    .collect::<Vec<u8>>();
                &sse
            }
        };
        let events = match self.parser.push(bytes) {
            Ok(events) => events,
            Err(why) => return self.break_off(&why),
        };
        let mut out = Vec::new();
        for event in events {
            out.extend(self.on_event(event));
            if self.outcome != Outcome::Running {
                break;
            }
        }
        self.bytes_out += out.len() as u64;
        out
    }

    fn on_event(&mut self, event: Event) -> Vec<u8> {
        if self.passthrough.is_some() {
            return self.on_responses_event(event);
        }
        if self.translator.is_some() {
            return self.on_translated_event(event);
        }
        let data = event.data.trim();
        if data.is_empty() {
            return event.raw;
        }
        if data == "[DONE]" {
            self.first.get_or_insert(First::Empty);
            self.outcome = Outcome::Completed;
            return event.raw;
        }
        let parsed: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if parsed.get("error").is_some() || event.event.as_deref() == Some("error") {
            return self.provider_error(data.as_bytes());
        }
        if parsed.is_null() {
            return self.break_off("the provider sent an event that is not JSON");
        }
        self.first.get_or_insert(First::Content);
        self.answer_chars += crate::chat::usage::answer_chars(&parsed);
        if let Some(usage) = Usage::from_openai(&parsed).filter(|_| !parsed["usage"].is_null()) {
            self.usage = Some(usage);
            let usage_only = parsed
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| c.is_empty());
            if usage_only && !self.client_wants_usage {
                return Vec::new();
            }
        }
        event.raw
    }

    fn on_translated_event(&mut self, event: Event) -> Vec<u8> {
        let data = event.data.trim();
        if data.is_empty() {
            return Vec::new();
        }
        let Some(t) = self.translator.as_mut() else {
            return Vec::new();
        };
        let translated = if data == "[DONE]" {
            t.on_done()
        } else {
            let Ok(parsed) = serde_json::from_str::<Value>(data) else {
                return self.break_off("the provider sent an event that is not JSON");
            };
            t.on_event(&parsed)
        };
        let frames = |chunks: &[Value]| {
            chunks
                .iter()
                .flat_map(|c| format!("data: {c}\n\n").into_bytes())
                .collect::<Vec<u8>>()
        };
        match translated {
            Translated::Chunks(chunks) => frames(&chunks),
            Translated::Content(chunks) => {
                self.first.get_or_insert(First::Content);
                for c in &chunks {
                    self.answer_chars += crate::chat::usage::answer_chars(c);
                }
                frames(&chunks)
            }
            Translated::Done(chunks) => {
                self.first.get_or_insert(First::Empty);
                self.outcome = Outcome::Completed;
                let translator = self.translator.as_deref();
                self.usage = translator.map(|t| t.usage());
                let mut out = frames(&chunks);
                if let (true, Some(t)) = (self.client_wants_usage, translator) {
                    out.extend(frames(&[t.usage_chunk()]));
                }
                out.extend(b"data: [DONE]\n\n");
                out
            }
            Translated::Error => self.provider_error(data.as_bytes()),
        }
    }

    /// One event of a Responses API stream: passed on as it came. It may be committed to once an
    /// output item or a delta arrives; an `error` or `response.failed` before that is a failed
    /// attempt, after it the stream ends with our own failure events; `response.completed` (or
    /// `.incomplete`) ends it with its usage.
    fn on_responses_event(&mut self, event: Event) -> Vec<u8> {
        let data = event.data.trim();
        if data.is_empty() {
            return event.raw;
        }
        let Ok(parsed) = serde_json::from_str::<Value>(data) else {
            return self.break_off("the provider sent an event that is not JSON");
        };
        if let Some(p) = self.passthrough.as_mut() {
            if let Some(n) = parsed.get("sequence_number").and_then(Value::as_u64) {
                p.next_sequence = n + 1;
            }
            if let Some(id) = parsed.pointer("/response/id").and_then(Value::as_str) {
                p.response_id = id.to_string();
            }
        }
        let kind = parsed.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "error" | "response.failed" => {
                let error = parsed
                    .get("error")
                    .or_else(|| parsed.pointer("/response/error"))
                    .cloned()
                    .unwrap_or_else(|| parsed.clone());
                let body = json!({ "error": error }).to_string();
                return self.provider_error(body.as_bytes());
            }
            "response.completed" | "response.incomplete" => {
                self.first.get_or_insert(First::Empty);
                self.outcome = Outcome::Completed;
                self.usage = parsed
                    .pointer("/response/usage")
                    .and_then(Usage::from_responses);
            }
            _ if kind.starts_with("response.output_item.") || kind.ends_with(".delta") => {
                self.first.get_or_insert(First::Content);
                if let Some(delta) = parsed.get("delta").and_then(Value::as_str) {
                    self.answer_chars += delta.chars().count() as u64;
                }
            }
            _ => {}
        }
        event.raw
    }

    /// An error event from the provider (`body` says which kind): before any content, the
    /// attempt's failure (nothing is sent; the plan may go on); after it, the end of the stream,
    /// with our own error event (the provider's text is never passed on).
    fn provider_error(&mut self, body: &[u8]) -> Vec<u8> {
        let kind = classify_status(502, body);
        if self.first.is_none() {
            self.first = Some(First::Error(kind));
            return Vec::new();
        }
        self.break_off(&format!(
            "the provider sent an error event ({})",
            kind.as_str()
        ))
    }

    /// The upstream ended (EOF): anything still owed to the client. A stream that ends without
    /// `[DONE]` was cut off.
    pub fn on_end(&mut self) -> Vec<u8> {
        let out = match self.outcome {
            Outcome::Running => self.break_off("the provider's stream ended before [DONE]"),
            Outcome::Completed | Outcome::Broken(_) | Outcome::ClientGone => Vec::new(),
        };
        self.front_out(out)
    }

    /// The upstream broke (network error, timeout): an error event for the client.
    pub fn on_error(&mut self, why: &str) -> Vec<u8> {
        let out = match self.outcome {
            Outcome::Running => self.break_off(why),
            Outcome::Completed | Outcome::Broken(_) | Outcome::ClientGone => Vec::new(),
        };
        self.front_out(out)
    }

    /// The client left: an answer still running ends here (what the provider produced so far is
    /// still settled and billed, `analytics::RequestRecord::finish_stream`).
    pub fn on_client_gone(&mut self) {
        if self.outcome == Outcome::Running {
            self.outcome = Outcome::ClientGone;
        }
    }

    fn break_off(&mut self, why: &str) -> Vec<u8> {
        self.outcome = Outcome::Broken(why.to_string());
        let message = "the provider's answer broke off before it was complete; retry the request";
        let bytes = match self.passthrough.as_mut() {
            Some(p) => p.failure(message),
            None => {
                let event = json!({"error": {
                    "message": message,
                    "type": "server_error",
                    "param": null,
                    "code": INTERRUPTED,
                }});
                format!("data: {event}\n\n").into_bytes()
            }
        };
        self.bytes_out += bytes.len() as u64;
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    const TOK: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn a_clean_stream_passes_unchanged_and_yields_usage() {
        let mut w = StreamWatch::new(true);
        let all = format!("{ROLE}{TOK}{USAGE}{DONE}");
        let mut out = String::new();
        for piece in all.as_bytes().chunks(7) {
            out += &text(w.on_chunk(piece));
        }
        out += &text(w.on_end());
        assert_eq!(out, all);
        assert_eq!(w.first(), Some(First::Content));
        assert_eq!(w.outcome, Outcome::Completed);
        assert_eq!(
            w.usage,
            Some(Usage {
                input: 7,
                output: 2,
                cached_input: 0
            })
        );
        assert_eq!(w.bytes_out, all.len() as u64);
    }

    #[test]
    fn the_usage_chunk_is_dropped_when_the_client_did_not_ask() {
        let mut w = StreamWatch::new(false);
        let out = text(w.on_chunk(format!("{ROLE}{TOK}{USAGE}{DONE}").as_bytes()));
        assert_eq!(out, format!("{ROLE}{TOK}{DONE}"));
        assert_eq!(w.usage.unwrap().output, 2);
    }

    #[test]
    fn first_event_verdicts() {
        let mut w = StreamWatch::new(false);
        assert!(!w.on_chunk(b": ping\n\n").is_empty());
        assert_eq!(w.first(), None, "comments are not content");
        assert!(w
            .on_chunk(
                b"data: {\"error\": {\"message\": \"overloaded\", \"type\": \"server_error\"}}\n\n"
            )
            .is_empty());
        assert_eq!(w.first(), Some(First::Error(ErrorKind::ServerError)));
        let mut w = StreamWatch::new(false);
        w.on_chunk(DONE.as_bytes());
        assert_eq!(w.first(), Some(First::Empty));
    }

    #[test]
    fn responses_streams_pass_through_and_end_in_kind() {
        let ev = |kind: &str, n: u64, extra: &str| {
            format!(
                "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{n}{extra}}}\n\n"
            )
        };
        let created = ev(
            "response.created",
            0,
            r#","response":{"id":"resp_1","status":"in_progress"}"#,
        );
        let delta = ev("response.output_text.delta", 1, r#","delta":"Hi""#);
        let done = ev(
            "response.completed",
            2,
            r#","response":{"id":"resp_1","usage":{"input_tokens":7,"output_tokens":2,"input_tokens_details":{"cached_tokens":3}}}"#,
        );
        let mut w = StreamWatch::for_responses();
        assert!(w.passes_responses());
        assert_eq!(text(w.on_chunk(created.as_bytes())), created);
        assert_eq!(w.first(), None, "not committed before output");
        assert_eq!(text(w.on_chunk(delta.as_bytes())), delta);
        assert_eq!(w.first(), Some(First::Content));
        assert_eq!(text(w.on_chunk(done.as_bytes())), done);
        assert_eq!(w.outcome, Outcome::Completed);
        assert_eq!(
            w.usage,
            Some(Usage {
                input: 7,
                output: 2,
                cached_input: 3
            })
        );

        let mut broken = StreamWatch::for_responses();
        broken.on_chunk(created.as_bytes());
        broken.on_chunk(delta.as_bytes());
        let out = text(broken.on_end());
        assert!(out.starts_with("event: response.failed\ndata: {"), "{out}");
        assert!(
            out.contains(r#""sequence_number":2"#) && out.contains(r#""id":"resp_1""#),
            "{out}"
        );
        assert!(out.contains("event: error\n") && out.contains(INTERRUPTED));

        let mut failed_early = StreamWatch::for_responses();
        let err = ev(
            "error",
            0,
            r#","code":"rate_limit_exceeded","message":"slow down""#,
        );
        assert!(
            failed_early.on_chunk(err.as_bytes()).is_empty(),
            "an error before output is the attempt's failure"
        );
        assert!(matches!(failed_early.first(), Some(First::Error(_))));
    }

    #[test]
    fn bedrock_frames_are_decoded_and_a_corrupt_one_breaks_the_stream() {
        use crate::stream::eventstream::encode;
        let frame = |kind: &str, payload: &str| {
            let headers = [(":event-type", kind), (":message-type", "event")];
            encode(&headers, payload.as_bytes())
        };
        let mut w = StreamWatch::for_provider(ProviderKind::Bedrock, false, "c", 0);
        let first = w.on_chunk(&frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        assert_eq!(w.first(), Some(First::Content));
        assert!(text(first).contains(r#""content":"Hi""#));
        let mut bad = frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#,
        );
        let n = bad.len();
        bad[n - 1] ^= 1;
        let out = text(w.on_chunk(&bad));
        assert!(out.contains(INTERRUPTED), "{out}");
        assert!(matches!(&w.outcome, Outcome::Broken(why) if why.contains("CRC")));
    }

    #[test]
    fn anthropic_streams_become_openai_chunks() {
        let events = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi there\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        for wants_usage in [false, true] {
            let mut w = StreamWatch::for_provider(ProviderKind::Anthropic, wants_usage, "", 5);
            let out = text(w.on_chunk(events.as_bytes()));
            let frames: Vec<&str> = out.split("\n\n").filter(|f| !f.is_empty()).collect();
            assert_eq!(frames.last(), Some(&"data: [DONE]"));
            let chunks: Vec<Value> = frames[..frames.len() - 1]
                .iter()
                .map(|f| serde_json::from_str(f.trim_start_matches("data: ")).unwrap())
                .collect();
            assert!(chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "msg_1"));
            assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
            assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi there");
            assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
            assert_eq!(chunks.len(), if wants_usage { 4 } else { 3 });
            if wants_usage {
                assert_eq!(chunks[3]["usage"]["completion_tokens"], 3);
            }
            assert_eq!(
                w.usage,
                Some(Usage {
                    input: 12,
                    output: 3,
                    cached_input: 0
                })
            );
            assert_eq!(
                (w.first(), w.outcome.clone(), w.answer_chars),
                (Some(First::Content), Outcome::Completed, 8)
            );
        }
        let mut w = StreamWatch::for_provider(ProviderKind::Anthropic, false, "", 5);
        assert!(w.on_chunk(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n").is_empty());
        assert!(matches!(w.first(), Some(First::Error(_))));
        let mut w = StreamWatch::for_provider(ProviderKind::Anthropic, false, "", 5);
        w.on_chunk(&events.as_bytes()[..events.find("event: content_block_stop").unwrap()]);
        assert!(
            text(w.on_end()).contains(INTERRUPTED),
            "no message_stop: cut off"
        );
    }

    #[test]
    fn breaks_become_error_events_never_done() {
        type Break = Box<dyn Fn(&mut StreamWatch) -> Vec<u8>>;
        let cases: Vec<(&str, Break)> = vec![
            ("cut", Box::new(|w| w.on_end())),
            ("network", Box::new(|w| w.on_error("connection reset"))),
            (
                "error event",
                Box::new(|w| {
                    w.on_chunk(b"data: {\"error\": {\"message\": \"secret detail\"}}\n\n")
                }),
            ),
            ("garbage", Box::new(|w| w.on_chunk(b"data: {not json\n\n"))),
        ];
        for (name, f) in cases {
            let mut w = StreamWatch::new(false);
            w.on_chunk(format!("{ROLE}{TOK}").as_bytes());
            let tail = text(f(&mut w));
            assert!(tail.starts_with("data: {\"error\""), "{name}: {tail}");
            assert!(
                tail.contains(INTERRUPTED)
                    && !tail.contains("[DONE]")
                    && !tail.contains("secret detail"),
                "{name}"
            );
            assert!(matches!(w.outcome, Outcome::Broken(_)), "{name}");
            assert!(
                w.on_chunk(DONE.as_bytes()).is_empty(),
                "{name}: nothing after the break"
            );
            assert!(w.on_end().is_empty());
        }
    }
}
