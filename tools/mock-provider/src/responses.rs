//! OpenAI's Responses API (`POST /v1/responses`), whole and streamed, with the same deterministic
//! content and usage as the chat answers: `chunks` pieces `"tok{i} "`, `output_tokens` =
//! `chunks`, `input_tokens` = characters of `instructions` and the input's text / 4.

use crate::behavior::Behavior;
use serde_json::{json, Value};

fn input_tokens(body: &Value) -> u64 {
    let mut chars = body
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, |s| s.chars().count());
    match body.get("input") {
        Some(Value::String(s)) => chars += s.chars().count(),
        Some(Value::Array(items)) => chars += crate::openai::content_chars(items),
        _ => {}
    }
    (chars as u64).div_ceil(4).max(1)
}

fn usage(body: &Value, b: &Behavior) -> Value {
    let input = input_tokens(body);
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": b.chunks, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": input + b.chunks as u64})
}

fn response(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    output: Value,
    usage: Value,
) -> Value {
    json!({"id": id, "object": "response", "created_at": created, "status": status, "error": null,
           "incomplete_details": null, "model": model, "output": output, "usage": usage,
           "store": true, "previous_response_id": null})
}

fn message(text: &str, status: &str) -> Value {
    json!({"type": "message", "id": "msg_mock_1", "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub fn whole(id: &str, created: u64, model: &str, body: &Value, b: &Behavior) -> Value {
    let text = crate::openai::pieces(b).concat();
    response(
        id,
        created,
        model,
        "completed",
        json!([message(&text, "completed")]),
        usage(body, b),
    )
}

/// The events of a streamed answer, each a full `event: ...\ndata: ...\n\n` frame, in order.
pub fn stream_events(
    id: &str,
    created: u64,
    model: &str,
    body: &Value,
    b: &Behavior,
) -> Vec<String> {
    let mut seq = 0u64;
    let mut frame = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let pending = response(id, created, model, "in_progress", json!([]), Value::Null);
    let mut out = vec![
        frame("response.created", json!({"response": pending})),
        frame("response.in_progress", json!({"response": pending})),
        frame(
            "response.output_item.added",
            json!({"output_index": 0, "item": message("", "in_progress")}),
        ),
        frame(
            "response.content_part.added",
            json!({"item_id": "msg_mock_1", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    let pieces = crate::openai::pieces(b);
    for p in &pieces {
        out.push(frame(
            "response.output_text.delta",
            json!({"item_id": "msg_mock_1", "output_index": 0,
            "content_index": 0, "delta": p, "logprobs": []}),
        ));
    }
    let text = pieces.concat();
    out.push(frame(
        "response.output_text.done",
        json!({"item_id": "msg_mock_1", "output_index": 0, "content_index": 0, "text": text}),
    ));
    out.push(frame(
        "response.output_item.done",
        json!({"output_index": 0, "item": message(&text, "completed")}),
    ));
    let done = whole(id, created, model, body, b);
    out.push(frame("response.completed", json!({"response": done})));
    out
}

/// An error event before any output (a failed stream).
pub fn stream_error() -> String {
    let data = json!({"type": "error", "sequence_number": 0, "code": "server_error",
                      "message": "mock: the model failed (upstream detail that must not reach clients)", "param": null});
    format!("event: error\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_streams_carry_the_usage() {
        let body = json!({"input": "12345678", "instructions": "abcd"});
        let r = whole("resp_1", 1, "m", &body, &Behavior::default());
        assert_eq!(r["usage"]["input_tokens"], 3);
        assert_eq!(
            r["output"][0]["content"][0]["text"],
            "tok0 tok1 tok2 tok3 tok4 "
        );
        let ev = stream_events("resp_1", 1, "m", &body, &Behavior::default());
        assert!(ev.last().unwrap().starts_with("event: response.completed"));
        assert_eq!(ev.len(), 4 + 5 + 3);
    }
}
