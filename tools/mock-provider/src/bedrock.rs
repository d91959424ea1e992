//! Amazon Bedrock's Converse API (`POST /model/<id>/converse` and `/converse-stream`), with the
//! same deterministic content and usage as the OpenAI answers: `chunks` pieces `"tok{i} "`,
//! `outputTokens` = `chunks`, `inputTokens` = characters of system and message text / 4. Streams
//! use the AWS event-stream binary framing (prelude, string headers, payload, both CRC32s),
//! written here on its own so the router's decoder is checked against a second implementation.

use crate::behavior::Behavior;
use serde_json::{json, Value};

fn input_tokens(body: &Value) -> u64 {
    let mut chars = 0usize;
    let texts = body
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            body.get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("content").and_then(Value::as_array))
                .flatten(),
        );
    for block in texts {
        chars += block
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count());
    }
    (chars as u64).div_ceil(4).max(1)
}

/// The tool the answer calls: the forced one, else the first, unless the last turn carries a
/// tool's result.
fn tool_to_call(body: &Value) -> Option<Value> {
    let last_is_result = body
        .pointer("/messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.pointer("/content/0/toolResult"))
        .is_some();
    if last_is_result {
        return None;
    }
    body.pointer("/toolConfig/toolChoice/tool/name")
        .or_else(|| body.pointer("/toolConfig/tools/0/toolSpec/name"))
        .cloned()
}

pub fn converse(body: &Value, b: &Behavior) -> Value {
    let (content, stop, output) = match tool_to_call(body) {
        Some(name) => (
            json!([{"toolUse": {"toolUseId": "tooluse_mock_1", "name": name, "input": {"city": "Paris"}}}]),
            "tool_use",
            8,
        ),
        None => (
            json!([{"text": crate::openai::pieces(b).concat()}]),
            "end_turn",
            b.chunks,
        ),
    };
    let input = input_tokens(body);
    json!({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
           "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output as u64},
           "metrics": {"latencyMs": 12}})
}

/// One event-stream message with string headers.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An exception inside the stream (`throttlingException` and the like).
pub fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

/// The frames of a streamed answer, in order. The padding field `p` is what Bedrock adds.
pub fn stream_events(body: &Value, b: &Behavior) -> Vec<Vec<u8>> {
    let mut out = vec![event(
        "messageStart",
        json!({"role": "assistant", "p": "abcd"}),
    )];
    let (stop, output) = match tool_to_call(body) {
        Some(name) => {
            out.push(event(
                "contentBlockStart",
                json!({"contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "tooluse_mock_1", "name": name}}}),
            ));
            for part in ["{\"city\":", "\"Paris\"}"] {
                out.push(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0,
                    "delta": {"toolUse": {"input": part}}}),
                ));
            }
            out.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
            ("tool_use", 8)
        }
        None => {
            for p in crate::openai::pieces(b) {
                out.push(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": p}, "p": "ab"}),
                ));
            }
            out.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
            ("end_turn", b.chunks)
        }
    };
    out.push(event("messageStop", json!({"stopReason": stop})));
    let input = input_tokens(body);
    out.push(event(
        "metadata",
        json!({"usage": {"inputTokens": input, "outputTokens": output,
        "totalTokens": input + output as u64}, "metrics": {"latencyMs": 12}}),
    ));
    out
}

/// Bedrock's error body and its `x-amzn-errortype`.
pub fn error(status: u16, context_length: bool) -> (Value, &'static str) {
    let (kind, message) = match (status, context_length) {
        (_, true) => (
            "ValidationException",
            "Input is too long for requested model.",
        ),
        (400, _) => (
            "ValidationException",
            "mock: malformed input (upstream detail that must not reach clients)",
        ),
        (403, _) | (401, _) => (
            "AccessDeniedException",
            "mock: the security token included in the request is invalid",
        ),
        (404, _) => ("ResourceNotFoundException", "mock: model not found"),
        (429, _) => (
            "ThrottlingException",
            "mock: too many requests (upstream detail that must not reach clients)",
        ),
        (503, _) => ("ServiceUnavailableException", "mock: service unavailable"),
        _ => (
            "InternalServerException",
            "mock: internal error (upstream detail that must not reach clients)",
        ),
    };
    (json!({"message": message}), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_lengths_and_checksums() {
        let f = frame(&[(":event-type", "x")], b"{}");
        assert_eq!(
            u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize,
            f.len()
        );
        let n = f.len();
        assert_eq!(crc32fast::hash(&f[..n - 4]).to_be_bytes(), f[n - 4..]);
        let body = json!({"messages": [{"role": "user", "content": [{"text": "12345678"}]}]});
        assert_eq!(
            converse(&body, &Behavior::default())["usage"]["inputTokens"],
            2
        );
        let tools = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                           "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather"}}]}});
        assert_eq!(
            converse(&tools, &Behavior::default())["stopReason"],
            "tool_use"
        );
    }
}
