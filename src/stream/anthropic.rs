//! The Anthropic front door's stream: the router's OpenAI-shaped stream re-encoded as the
//! Messages API's events (`message_start`, content blocks, `message_delta` with the usage,
//! `message_stop`), as the last stage of the stream watch.

use crate::chat::usage::Usage;
use crate::stream::sse::SseParser;
use serde_json::{json, Value};

/// An OpenAI `finish_reason` as the Messages API's `stop_reason`.
pub fn stop_reason(finish: Option<&str>) -> Value {
    match finish {
        Some("length") => json!("max_tokens"),
        Some("tool_calls" | "function_call") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        Some(_) => json!("end_turn"),
        None => Value::Null,
    }
}

/// Turns the router's OpenAI stream into Anthropic's events, as the last stage of the stream watch.
#[derive(Debug, Default)]
pub struct StreamAdapter {
    parser: SseParser,
    started: bool,
    /// The open content block: its index, and whether it is text.
    open: Option<(usize, bool)>,
    next_index: usize,
    /// OpenAI tool-call index -> Anthropic block index.
    tool_blocks: Vec<(u64, usize)>,
    stop: Option<Value>,
    /// The usage the stream reported, once it has.
    usage: Option<Usage>,
    finished: bool,
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

impl StreamAdapter {
    pub fn new() -> Self {
        Self::default()
    }

    fn close_block(&mut self, out: &mut String) {
        if let Some((index, _)) = self.open.take() {
            out.push_str(&event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn finish(&mut self, out: &mut String) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.close_block(out);
        // Providers that stream OpenAI's way report input tokens only at the end; the Messages
        // API allows them in the final usage, where the SDKs read them.
        let usage = self
            .usage
            .map_or(json!({"output_tokens": 0}), Usage::to_anthropic);
        out.push_str(&event("message_delta", json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.clone().unwrap_or(json!("end_turn")), "stop_sequence": null},
            "usage": usage})));
        out.push_str(&event("message_stop", json!({"type": "message_stop"})));
    }

    /// OpenAI SSE bytes in, Anthropic SSE bytes out.
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        let events = self.parser.push(bytes).unwrap_or_default();
        for e in events {
            let data = e.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                self.finish(&mut out);
                continue;
            }
            let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if let Some(err) = chunk.get("error") {
                out.push_str(&event(
                    "error",
                    json!({"type": "error", "error": {"type": "api_error",
                    "message": err.get("message"), "code": err.get("code")}}),
                ));
                continue;
            }
            if chunk.get("usage").is_some_and(|u| !u.is_null()) {
                self.usage = Usage::from_openai(&chunk);
            }
            if !self.started {
                self.started = true;
                let mut usage = self.usage.unwrap_or_default().to_anthropic();
                usage["output_tokens"] = 0.into();
                out.push_str(&event("message_start", json!({"type": "message_start", "message": {
                    "id": chunk.get("id"), "type": "message", "role": "assistant", "model": chunk.get("model"),
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": usage}})));
            }
            let Some(choice) = chunk.pointer("/choices/0") else {
                continue;
            };
            let delta = &choice["delta"];
            if let Some(text) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                if !matches!(self.open, Some((_, true))) {
                    self.close_block(&mut out);
                    let index = self.next_index;
                    self.next_index += 1;
                    self.open = Some((index, true));
                    out.push_str(&event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}),
                    ));
                }
                let index = self.open.map_or(0, |(i, _)| i);
                out.push_str(&event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let index = match self.tool_blocks.iter().find(|(t, _)| *t == k) {
                    Some((_, i)) => *i,
                    None => {
                        self.close_block(&mut out);
                        let index = self.next_index;
                        self.next_index += 1;
                        self.tool_blocks.push((k, index));
                        self.open = Some((index, false));
                        out.push_str(&event("content_block_start", json!({"type": "content_block_start", "index": index,
                            "content_block": {"type": "tool_use", "id": call.get("id"), "name": call.pointer("/function/name"), "input": {}}})));
                        index
                    }
                };
                if let Some(args) = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    out.push_str(&event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": args}}),
                    ));
                }
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop = Some(stop_reason(Some(f)));
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_streams_become_anthropic_events() {
        let mut a = StreamAdapter::new();
        let input = concat!(
            "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n",
            "data: [DONE]\n\n",
        );
        let out = String::from_utf8(a.on_bytes(input.as_bytes())).unwrap();
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(out.contains("\"stop_reason\":\"tool_use\""));
        let delta = out
            .lines()
            .skip_while(|l| *l != "event: message_delta")
            .nth(1)
            .and_then(|l| l.strip_prefix("data: "))
            .unwrap();
        let delta: Value = serde_json::from_str(delta).unwrap();
        assert_eq!(
            delta["usage"],
            json!({"output_tokens": 7, "input_tokens": 5, "cache_read_input_tokens": 0}),
            "input tokens reported only at the end reach the final usage"
        );
        // Usage in the first chunk (with cached tokens) reaches message_start itself.
        let mut early = StreamAdapter::new();
        let first = String::from_utf8(early.on_bytes(
            b"data: {\"id\":\"c2\",\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
        ))
        .unwrap();
        assert!(
            first.contains(
                "\"usage\":{\"cache_read_input_tokens\":4,\"input_tokens\":5,\"output_tokens\":0}"
            ),
            "{first}"
        );
        assert!(out.contains("\"partial_json\":\"{}\""));
        let mut b = StreamAdapter::new();
        let err = String::from_utf8(b.on_bytes(
            b"data: {\"error\":{\"message\":\"broke\",\"code\":\"stream_interrupted\"}}\n\n",
        ))
        .unwrap();
        assert!(
            err.starts_with("event: error\n")
                && err.contains("stream_interrupted")
                && !err.contains("message_stop")
        );
    }
}
