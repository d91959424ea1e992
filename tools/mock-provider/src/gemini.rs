//! Gemini answers (`generateContent`, `streamGenerateContent?alt=sse`) with the same deterministic
//! content and usage as the other wire formats: `chunks` pieces `"tok{i} "`, `candidatesTokenCount`
//! = `chunks`, `promptTokenCount` = characters of system and content text / 4.

use crate::behavior::Behavior;
use serde_json::{json, Value};

fn prompt_tokens(body: &Value) -> u64 {
    let mut chars = 0usize;
    let mut count = |parts: Option<&Value>| {
        for p in parts.and_then(Value::as_array).into_iter().flatten() {
            chars += p
                .get("text")
                .and_then(Value::as_str)
                .map_or(0, |t| t.chars().count());
        }
    };
    count(body.pointer("/systemInstruction/parts"));
    for c in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        count(c.get("parts"));
    }
    (chars as u64).div_ceil(4).max(1)
}

fn usage(body: &Value, b: &Behavior) -> Value {
    let p = prompt_tokens(body);
    json!({"promptTokenCount": p, "candidatesTokenCount": b.chunks, "totalTokenCount": p + b.chunks as u64})
}

pub fn response(model: &str, body: &Value, b: &Behavior) -> Value {
    if b.safety_block {
        return json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": prompt_tokens(body)}});
    }
    let mut parts = vec![json!({"text": crate::openai::pieces(b).concat()})];
    if let Some(name) = body.pointer("/tools/0/functionDeclarations/0/name") {
        parts.push(json!({"functionCall": {"name": name, "args": {"city": "Paris"}}}));
    }
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
           "usageMetadata": usage(body, b), "modelVersion": model})
}

pub fn stream_events(model: &str, body: &Value, b: &Behavior) -> Vec<String> {
    if b.safety_block {
        return vec![format!("data: {}\r\n\r\n", response(model, body, b))];
    }
    let pieces = crate::openai::pieces(b);
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut ev = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}], "modelVersion": model});
            if i + 1 == n {
                ev["candidates"][0]["finishReason"] = json!("STOP");
                ev["usageMetadata"] = usage(body, b);
            }
            // Gemini separates events with \r\n\r\n.
            format!("data: {ev}\r\n\r\n")
        })
        .collect()
}

pub fn error_body(status: u16, context_length: bool) -> Value {
    let (state, message) = match (status, context_length) {
        (_, true) => (
            "INVALID_ARGUMENT",
            "The input token count (9000) exceeds the maximum number of tokens allowed (4096).",
        ),
        (400, _) => (
            "INVALID_ARGUMENT",
            "mock: invalid (upstream detail that must not reach clients)",
        ),
        (401 | 403, _) => ("PERMISSION_DENIED", "API key not valid"),
        (429, _) => (
            "RESOURCE_EXHAUSTED",
            "mock: quota (upstream detail that must not reach clients)",
        ),
        (503, _) => ("UNAVAILABLE", "The model is overloaded."),
        _ => (
            "INTERNAL",
            "mock: internal (upstream detail that must not reach clients)",
        ),
    };
    json!({"error": {"code": status, "message": message, "status": state}})
}
