//! The Anthropic front door, `POST /v1/messages`, so the Anthropic SDK can point at the router:
//! the Messages request becomes the internal (OpenAI-shaped) chat request, is routed like any other,
//! and the answer (whole, streamed, or an error) is turned back into the Messages API's shape.

use crate::chat::usage::Usage;
use crate::error::{ApiError, ErrorCode};
use crate::http::{Body, Incoming, Reply, ReplyBody};
use crate::stream::anthropic::stop_reason;
use crate::stream::reply::ChatReply;
use serde_json::{json, Map, Value};

/// An Anthropic Messages request as an OpenAI chat-completions body.
pub fn request_to_openai(body: &Value) -> Result<Value, ApiError> {
    let invalid = |m: &str| ApiError::new(ErrorCode::InvalidRequest, m.to_string());
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("the request body must be a JSON object"))?;
    let mut messages = Vec::new();
    match obj.get("system") {
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let text: Vec<&str> = blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            messages.push(json!({"role": "system", "content": text.join("\n")}));
        }
        _ => {}
    }
    let list = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    for (i, m) in list.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("`messages[{i}].role` is required")))?;
        match m.get("content") {
            Some(Value::String(s)) => messages.push(json!({"role": role, "content": s})),
            Some(Value::Array(blocks)) => {
                let mut parts = Vec::new();
                let mut calls = Vec::new();
                for b in blocks {
                    match b.get("type").and_then(Value::as_str) {
                        Some("text") => parts.push(json!({"type": "text", "text": b.get("text")})),
                        Some("image") => {
                            let src = &b["source"];
                            let url = match src.get("type").and_then(Value::as_str) {
                                Some("base64") => format!(
                                    "data:{};base64,{}",
                                    src["media_type"].as_str().unwrap_or("image/png"),
                                    src["data"].as_str().unwrap_or("")
                                ),
                                _ => src["url"].as_str().unwrap_or("").to_string(),
                            };
                            parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                        }
                        Some("tool_use") => calls.push(json!({"id": b.get("id"), "type": "function",
                            "function": {"name": b.get("name"), "arguments": b.get("input").map_or("{}".into(), Value::to_string)}})),
                        Some("tool_result") => {
                            let content = match b.get("content") {
                                Some(Value::String(s)) => s.clone(),
                                Some(Value::Array(inner)) => inner
                                    .iter()
                                    .filter_map(|x| x.get("text").and_then(Value::as_str))
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                                _ => String::new(),
                            };
                            messages.push(json!({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": content}));
                        }
                        _ => {}
                    }
                }
                if !parts.is_empty() || !calls.is_empty() {
                    let mut msg = json!({"role": role, "content": if parts.is_empty() { Value::Null } else { Value::Array(parts) }});
                    if !calls.is_empty() {
                        msg["tool_calls"] = Value::Array(calls);
                    }
                    messages.push(msg);
                }
            }
            _ => {
                return Err(invalid(&format!(
                    "`messages[{i}].content` must be a string or an array of blocks"
                )))
            }
        }
    }
    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert("messages".into(), Value::Array(messages));
    for (from, to) in [
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("stop_sequences", "stop"),
        ("stream", "stream"),
        ("metadata", "metadata"),
    ] {
        if let Some(v) = obj.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(user) = body.pointer("/metadata/user_id") {
        out.insert("user".into(), user.clone());
        out.remove("metadata");
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.get("name"), "description": t.get("description"),
                            "parameters": t.get("input_schema")}}))
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice") {
        let c = match choice.get("type").and_then(Value::as_str) {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": choice.get("name")}}),
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), c);
    }
    Ok(Value::Object(out))
}

/// An OpenAI chat completion as an Anthropic message.
pub fn response_from_openai(c: &Value) -> Value {
    let msg = c
        .pointer("/choices/0/message")
        .cloned()
        .unwrap_or(Value::Null);
    let mut content = Vec::new();
    if let Some(text) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    content.extend(
        msg.get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(crate::providers::anthropic::tool_use_block),
    );
    json!({
        "id": c.get("id"), "type": "message", "role": "assistant", "model": c.get("model"),
        "content": content,
        "stop_reason": stop_reason(c.pointer("/choices/0/finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": Usage::from_openai(c).unwrap_or_default().to_anthropic(),
    })
}

/// An error in the Messages API's shape (our code kept alongside, for SDK users who log it).
pub fn error_body(err: &ApiError) -> Vec<u8> {
    error_body_for_status(err.status(), err.code.code(), &err.message)
}

/// The same, from a status, our code and message (an error the chat path already produced).
pub fn error_body_for_status(status: u16, code: &str, message: &str) -> Vec<u8> {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message, "code": code}})
        .to_string()
        .into_bytes()
}

/// Turn an incoming Messages request into the chat request the router routes, in place. A body
/// over the size limit is left for the chat path to refuse with its usual error; one that is not
/// a usable Messages request gets its error in Anthropic's shape.
pub fn into_chat<S>(req: &mut Incoming, max_body_bytes: usize) -> Result<(), Reply<S>> {
    let body = match &req.body {
        Body::Bytes(b) if b.len() <= max_body_bytes => serde_json::from_slice::<Value>(b)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("the request body is not valid JSON: {e}"),
                )
            })
            .and_then(|v| request_to_openai(&v)),
        Body::Bytes(_) | Body::TooLarge { .. } => return Ok(()),
    };
    match body {
        Ok(body) => {
            req.body = Body::Bytes(body.to_string().into_bytes());
            Ok(())
        }
        Err(e) => {
            let mut reply = Reply::error(&e);
            reply.body = ReplyBody::Bytes(error_body(&e));
            Err(reply)
        }
    }
}

/// Turn the chat path's reply into the Messages API's: a message, an Anthropic event stream, or
/// an Anthropic error carrying `code`, the request's outcome.
pub fn reply_from_chat<B>(reply: &mut ChatReply<B>, code: &str) {
    let body = std::mem::replace(&mut reply.body, ReplyBody::Bytes(Vec::new()));
    reply.body = match body {
        ReplyBody::Stream(mut streamed) => {
            streamed.prefix = streamed.watch.serve_anthropic_front(&streamed.prefix);
            ReplyBody::Stream(streamed)
        }
        ReplyBody::Bytes(bytes) => {
            let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if reply.status == 200 {
                ReplyBody::Bytes(response_from_openai(&parsed).to_string().into_bytes())
            } else {
                let message = parsed
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                ReplyBody::Bytes(error_body_for_status(reply.status, code, message))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_requests_become_chat_requests() {
        let req = json!({
            "model": "auto", "max_tokens": 256, "system": "Be brief.", "stop_sequences": ["END"], "stream": true,
            "metadata": {"user_id": "u-9"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Look"},
                                              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]}
            ],
            "tools": [{"name": "f", "description": "does f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f"}
        });
        let out = request_to_openai(&req).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "auto", "max_tokens": 256, "stop": ["END"], "stream": true, "user": "u-9",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "done"}
                ],
                "tools": [{"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}}
            })
        );
        assert_eq!(
            request_to_openai(&json!({"messages": "x"}))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
    }

    /// A Messages request in through the front door and out through the Anthropic provider, and a
    /// Messages answer back the other way, come out as they went in.
    #[test]
    fn round_trips_through_the_anthropic_provider() {
        use crate::chat::request::parse_chat;
        use crate::decide::plan::Attempt;
        use crate::http::Body;
        use crate::providers::anthropic;
        use crate::providers::api::ProviderApi;
        use crate::rules::provider::ProviderKind;
        use crate::rules::{builtin_retry, FallbackOn, Provider};
        let original = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 512, "system": "Be brief.", "temperature": 0.5,
            "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Look"},
                                              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Calling."},
                                                   {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]}
            ],
            "tools": [{"name": "f", "description": "does f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f"}
        });
        let openai = request_to_openai(&original).unwrap();
        let chat =
            parse_chat(&Body::Bytes(openai.to_string().into_bytes()), None, 1 << 20).unwrap();
        let provider = Provider {
            name: "a".into(),
            kind: ProviderKind::Anthropic,
            base_url: "https://api.anthropic.com".into(),
            api_key_secret: None,
            headers: Vec::new(),
            api_version: None,
            allow_byok: false,
            region: None,
        };
        let attempt = Attempt {
            target: "m".into(),
            provider: "a".into(),
            model_id: "claude-sonnet-4-5".into(),
            overrides: Map::new(),
            retry: builtin_retry(),
            timeout_ms: 1000,
            fallback_on: FallbackOn::Default,
            why: "t".into(),
        };
        let sent: Value = serde_json::from_slice(
            &anthropic::Anthropic
                .build_request(&provider, &attempt, &chat, None)
                .body,
        )
        .unwrap();
        assert_eq!(sent, original);

        let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {"b": 2}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 0, "output_tokens": 4}});
        let back = response_from_openai(&anthropic::response_to_openai(&answer, 0));
        assert_eq!(back, answer);
    }

    #[test]
    fn completions_become_messages() {
        let c = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"message": {"content": "Hi", "tool_calls": [
            {"id": "call_1", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}});
        assert_eq!(
            response_from_openai(&c),
            json!({
                "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "m",
                "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 6, "cache_read_input_tokens": 4, "output_tokens": 3}
            })
        );
        let e = error_body(&ApiError::new(ErrorCode::UpstreamRateLimited, "slow down"));
        let v: Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }
}
