//! Anthropic Messages API answers (`POST /v1/messages`), whole and streamed, with the same
//! deterministic content and usage as the OpenAI answers: `chunks` pieces `"tok{i} "`,
//! `output_tokens` = `chunks`, `input_tokens` = characters of system and message text / 4.

use crate::behavior::Behavior;
use serde_json::{json, Value};

pub fn input_tokens(body: &Value) -> u64 {
    let system = body
        .get("system")
        .and_then(Value::as_str)
        .map_or(0, |s| s.chars().count());
    ((system + crate::openai::message_chars(body)) as u64)
        .div_ceil(4)
        .max(1)
}

pub fn message(id: &str, model: &str, body: &Value, b: &Behavior) -> Value {
    let text: String = crate::openai::pieces(b).concat();
    let mut content = vec![json!({"type": "text", "text": text})];
    let mut stop = "end_turn";
    // A forced tool: Claude answers with that tool's call alone.
    if body.pointer("/tool_choice/type").and_then(Value::as_str) == Some("tool") {
        let name = body
            .pointer("/tool_choice/name")
            .cloned()
            .unwrap_or(Value::Null);
        content = vec![
            json!({"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {"city": "Paris"}}),
        ];
        stop = "tool_use";
    } else if let Some(tool) = body.pointer("/tools/0/name") {
        // Asked for a tool: answer with a call to the first one, as Claude does.
        content.push(json!({"type": "tool_use", "id": "toolu_mock_1", "name": tool, "input": {"city": "Paris"}}));
        stop = "tool_use";
    }
    json!({"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
           "stop_reason": stop, "stop_sequence": null,
           "usage": {"input_tokens": input_tokens(body), "output_tokens": b.chunks, "cache_read_input_tokens": 0}})
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub fn stream_events(id: &str, model: &str, body: &Value, b: &Behavior) -> Vec<String> {
    let mut out = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "content": [],
               "model": model, "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": input_tokens(body), "output_tokens": 1}}}),
    )];
    out.push(event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
    out.push(event("ping", json!({"type": "ping"})));
    for p in crate::openai::pieces(b) {
        out.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})));
    }
    out.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": b.chunks}}),
    ));
    out.push(event("message_stop", json!({"type": "message_stop"})));
    out
}

pub fn error_body(status: u16, context_length: bool) -> Value {
    let (kind, message) = match (status, context_length) {
        (_, true) => (
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
        (400, _) => (
            "invalid_request_error",
            "mock: invalid request (upstream detail that must not reach clients)",
        ),
        (401, _) => ("authentication_error", "invalid x-api-key"),
        (429, _) => (
            "rate_limit_error",
            "mock: rate limited (upstream detail that must not reach clients)",
        ),
        (529, _) => ("overloaded_error", "Overloaded"),
        _ => (
            "api_error",
            "mock: internal error (upstream detail that must not reach clients)",
        ),
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
