//! OpenAI chat-completions answers, whole and streamed, with deterministic content and usage so
//! tests can compute what the router should report: the answer is `chunks` pieces `"tok{i} "`
//! (or the `answer` directive's text, whole),
//! `completion_tokens` is `chunks`, and `prompt_tokens` is the characters of all message text / 4,
//! rounded up. Asked with `tools` (and `tool_choice` not `none`) after anything but a tool's
//! result, it calls the forced tool or the first one with `{"city":"Paris"}`, as models do.

use crate::behavior::Behavior;
use serde_json::{json, Value};

/// Characters of the text in `messages` (string contents and the `text` of content parts).
pub fn message_chars(body: &Value) -> usize {
    let messages = body.get("messages").and_then(Value::as_array);
    content_chars(messages.map_or(&[][..], Vec::as_slice))
}

/// Characters of the text in a list of messages or Responses input items: string contents and
/// the `text` of content parts.
pub fn content_chars(items: &[Value]) -> usize {
    let mut chars = 0usize;
    for m in items {
        match m.get("content") {
            Some(Value::String(s)) => chars += s.chars().count(),
            Some(Value::Array(parts)) => {
                for p in parts {
                    chars += p
                        .get("text")
                        .and_then(Value::as_str)
                        .map_or(0, |t| t.chars().count());
                }
            }
            _ => {}
        }
    }
    chars
}

pub fn prompt_tokens(body: &Value) -> u64 {
    (message_chars(body) as u64).div_ceil(4).max(1)
}

pub fn pieces(b: &Behavior) -> Vec<String> {
    if let Some(answer) = &b.answer {
        return vec![answer.clone()];
    }
    (0..b.chunks).map(|i| format!("tok{i} ")).collect()
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0}
    })
}

/// The tool the answer calls, if the request asks for one (see the module's header).
pub fn tool_to_call(body: &Value) -> Option<String> {
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = body
        .pointer("/messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    if last_role == Some("tool") {
        return None;
    }
    let forced = choice.and_then(|c| c.pointer("/function/name"));
    forced
        .or_else(|| body.pointer("/tools/0/function/name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

const TOOL_ARGS: &str = "{\"city\":\"Paris\"}";

pub fn completion(id: &str, created: u64, model: &str, body: &Value, b: &Behavior) -> Value {
    if let Some(name) = tool_to_call(body) {
        let call = json!({"id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": TOOL_ARGS}});
        return json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [call], "refusal": null},
                         "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": usage(prompt_tokens(body), 8),
        });
    }
    let pieces = pieces(b);
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": pieces.concat(), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
    });
    if !b.no_usage {
        out["usage"] = usage(prompt_tokens(body), pieces.len() as u64);
    }
    out
}

fn chunk(id: &str, created: u64, model: &str, delta: Value, finish: Value) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    })
}

/// The events of a streamed answer, each a full `data: ...\n\n` frame, in order.
pub fn stream_events(
    id: &str,
    created: u64,
    model: &str,
    body: &Value,
    b: &Behavior,
) -> Vec<String> {
    let frame = |v: Value| format!("data: {v}\n\n");
    let mut events = vec![frame(chunk(
        id,
        created,
        model,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ))];
    let mut pieces = pieces(b);
    let mut finish = "stop";
    if let Some(name) = tool_to_call(body) {
        let head = json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                                          "function": {"name": name, "arguments": ""}}]});
        events.push(frame(chunk(id, created, model, head, Value::Null)));
        let (a, b) = TOOL_ARGS.split_at(8);
        for part in [a, b] {
            let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]});
            events.push(frame(chunk(id, created, model, delta, Value::Null)));
        }
        pieces = vec![String::new(); 8];
        finish = "tool_calls";
    } else {
        for p in &pieces {
            events.push(frame(chunk(
                id,
                created,
                model,
                json!({"content": p}),
                Value::Null,
            )));
        }
    }
    events.push(frame(chunk(id, created, model, json!({}), json!(finish))));
    let wants_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    if wants_usage && !b.no_usage {
        events.push(frame(json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage(prompt_tokens(body), pieces.len() as u64)
        })));
    }
    events.push("data: [DONE]\n\n".to_string());
    events
}

pub fn context_length_body() -> Value {
    json!({"error": {"message": "This model's maximum context length is 4096 tokens. However, your messages resulted in 9000 tokens.",
                     "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
}

pub fn error_body(status: u16) -> Value {
    let (kind, code) = match status {
        400 => ("invalid_request_error", "invalid_request"),
        401 => ("invalid_request_error", "invalid_api_key"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        _ => ("server_error", "server_error"),
    };
    json!({"error": {"message": format!("mock provider answered {status} (upstream detail that must not reach clients)"),
                     "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_predictable() {
        let body = json!({"messages": [{"role": "user", "content": "12345678"}, {"role": "user",
                          "content": [{"type": "text", "text": "1"}]}]});
        assert_eq!(prompt_tokens(&body), 3);
        let b = Behavior::default();
        let c = completion("id", 1, "m", &body, &b);
        assert_eq!(c["usage"]["completion_tokens"], 5);
        assert_eq!(
            c["choices"][0]["message"]["content"],
            "tok0 tok1 tok2 tok3 tok4 "
        );
    }

    #[test]
    fn stream_has_role_content_finish_usage_done() {
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}});
        let ev = stream_events("id", 1, "m", &body, &Behavior::default());
        assert_eq!(ev.len(), 1 + 5 + 1 + 1 + 1);
        assert!(ev[7].contains("\"usage\""));
        assert_eq!(ev[8], "data: [DONE]\n\n");
        let no_usage = stream_events("id", 1, "m", &json!({"messages": []}), &Behavior::default());
        assert_eq!(no_usage.len(), 8);
    }

    #[test]
    fn tools_are_called_until_their_result_comes() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather"}}]);
        let asked = json!({"messages": [{"role": "user", "content": "weather?"}], "tools": tools});
        let c = completion("id", 1, "m", &asked, &Behavior::default());
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        let ev = stream_events("id", 1, "m", &asked, &Behavior::default()).concat();
        assert!(ev.contains("\"finish_reason\":\"tool_calls\""));
        let answered = json!({"messages": [{"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"}], "tools": tools});
        assert_eq!(
            completion("id", 1, "m", &answered, &Behavior::default())["choices"][0]
                ["finish_reason"],
            "stop"
        );
        let none = json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": "none"});
        assert_eq!(tool_to_call(&none), None);
    }
}
