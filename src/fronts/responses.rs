//! OpenAI's Responses API front door, `POST /v1/responses`: the request (a string or items,
//! `instructions`, function tools and their outputs, structured output) becomes the internal chat
//! request, is routed like any other (tasks, conditions, fallback), and the answer, whole or
//! streamed, goes back as a Response object. OpenAI targets get the original request instead
//! (`ChatRequest::responses_request`, `dispatch::attempt`) and their Responses pass back as they
//! are. The router keeps no state: `previous_response_id`,
//! `conversation`, `background` and stored prompts are refused with `unsupported_parameter`, and
//! every Response says `store: false`.

use crate::chat::usage::Usage;
use crate::error::{ApiError, ErrorCode};
use crate::http::{Body, Incoming, Reply, ReplyBody};
use crate::stream::reply::ChatReply;
use crate::stream::responses::{call_item, item_id, message_item, response_object, Echo, Status};
use serde_json::{json, Map, Value};

/// The request fields a Response object repeats back, with their defaults.
const ECHOED: [(&str, Value); 10] = [
    ("instructions", Value::Null),
    ("max_output_tokens", Value::Null),
    ("metadata", Value::Null),
    ("parallel_tool_calls", Value::Bool(true)),
    ("reasoning", Value::Null),
    ("temperature", Value::Null),
    ("text", Value::Null),
    ("tool_choice", Value::Null),
    ("tools", Value::Null),
    ("top_p", Value::Null),
];

/// Request fields that need state the router does not keep.
const STATEFUL: [&str; 3] = ["previous_response_id", "conversation", "prompt"];

/// Fields passed on to the chat request under the same name.
const SAME_NAME: [&str; 9] = [
    "model",
    "stream",
    "temperature",
    "top_p",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedParameter, message)
}

/// A Responses API request as a chat-completions body, and what its Response repeats back.
pub fn request_to_chat(body: &Value) -> Result<(Value, Echo), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("the request body must be a JSON object"))?;
    for field in STATEFUL {
        if obj.get(field).is_some_and(|v| !v.is_null()) {
            return Err(unsupported(format!(
                "`{field}` needs responses stored by the server, and the router stores none: send the whole conversation in `input`"
            )));
        }
    }
    if obj.get("background") == Some(&Value::Bool(true)) {
        return Err(unsupported(
            "`background` responses need the server to keep them, and the router keeps none",
        ));
    }
    let mut messages = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err(invalid("`instructions` must be a string")),
    }
    match obj.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                push_item(&mut messages, item, i)?;
            }
        }
        _ => return Err(invalid("`input` must be a string or an array of items")),
    }
    let mut out = Map::new();
    for field in SAME_NAME {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
            out.insert(field.into(), v.clone());
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(v) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_completion_tokens".into(), v.clone());
    }
    if let Some(m) = obj.get("metadata").filter(|v| !v.is_null()) {
        out.insert("metadata".into(), m.clone());
    }
    if let Some(effort) = body.pointer("/reasoning/effort").filter(|v| !v.is_null()) {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(format) = body.pointer("/text/format") {
        if let Some(f) = response_format(format)? {
            out.insert("response_format".into(), f);
        }
    }
    if let Some(v) = body.pointer("/text/verbosity").filter(|v| !v.is_null()) {
        out.insert("verbosity".into(), v.clone());
    }
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| invalid("`tools` must be an array"))?;
        let tools = tools
            .iter()
            .enumerate()
            .map(|(i, t)| chat_tool(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        out.insert("tool_choice".into(), tool_choice(choice)?);
    }
    let mut echo = Echo::default();
    for (field, default) in ECHOED {
        let value = obj.get(field).cloned().unwrap_or(default);
        echo.fields.insert(field.into(), value);
    }
    if echo.fields["tools"].is_null() {
        echo.fields.insert("tools".into(), json!([]));
    }
    if echo.fields["tool_choice"].is_null() {
        echo.fields.insert("tool_choice".into(), json!("auto"));
    }
    if echo.fields["text"].is_null() {
        echo.fields
            .insert("text".into(), json!({"format": {"type": "text"}}));
    }
    Ok((Value::Object(out), echo))
}

/// One input item as chat messages: a message, a function call (joined to the assistant turn
/// before it), or a function call's output.
fn push_item(messages: &mut Vec<Value>, item: &Value, i: usize) -> Result<(), ApiError> {
    let kind = match item.get("type").and_then(Value::as_str) {
        Some(t) => t,
        None if item.get("role").is_some() => "message",
        None => return Err(invalid(format!("`input[{i}]` has no `type`"))),
    };
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("developer" | "system") => "system",
                Some(r @ ("user" | "assistant")) => r,
                _ => {
                    return Err(invalid(format!(
                        "`input[{i}].role` must be user, assistant, system or developer"
                    )))
                }
            };
            let content = message_content(item.get("content"), role, i)?;
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let text = |f: &str| item.get(f).and_then(Value::as_str);
            let (Some(call_id), Some(name)) = (text("call_id"), text("name")) else {
                return Err(invalid(format!(
                    "`input[{i}]` (a function_call) needs `call_id` and `name`"
                )));
            };
            let call = json!({"id": call_id, "type": "function",
                              "function": {"name": name, "arguments": text("arguments").unwrap_or("{}")}});
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        Some(calls) => calls.push(call),
                        None => last["tool_calls"] = json!([call]),
                    }
                }
                _ => messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
                return Err(invalid(format!(
                    "`input[{i}]` (a function_call_output) needs `call_id`"
                )));
            };
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => joined_text(parts),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
        }
        // A model's reasoning from an earlier turn: chat completions take none back.
        "reasoning" => {}
        "item_reference" => {
            return Err(unsupported(format!(
                "`input[{i}]` is an item_reference, which needs items stored by the server; the router stores none"
            )))
        }
        other => {
            return Err(unsupported(format!(
                "`input[{i}]` is a {other} item; the router takes message, function_call, function_call_output and reasoning items"
            )))
        }
    }
    Ok(())
}

/// A message's content for chat: a string as it is, parts as text and image parts (an
/// assistant's as one string, which every provider kind takes).
fn message_content(content: Option<&Value>, role: &str, i: usize) -> Result<Value, ApiError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(format!(
                "`input[{i}].content` must be a string or an array of parts"
            )))
        }
    };
    if role != "user" {
        return Ok(Value::String(joined_text(parts)));
    }
    let mut out = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": p.get("text").cloned().unwrap_or(json!(""))}))
            }
            Some("input_image") => match p.get("image_url").and_then(Value::as_str) {
                Some(url) => {
                    let mut image = json!({"url": url});
                    if let Some(detail) = p.get("detail").filter(|d| !d.is_null()) {
                        image["detail"] = detail.clone();
                    }
                    out.push(json!({"type": "image_url", "image_url": image}))
                }
                None => {
                    return Err(unsupported(format!(
                        "`input[{i}].content[{j}]` names an uploaded file; the router takes images as `image_url` (a URL or a data: URL)"
                    )))
                }
            },
            other => {
                return Err(unsupported(format!(
                    "`input[{i}].content[{j}]` is of type {}; the router takes input_text and input_image parts",
                    other.unwrap_or("(none)")
                )))
            }
        }
    }
    Ok(Value::Array(out))
}

/// The text of a list of parts, joined by newlines.
fn joined_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.get("text").or_else(|| p.get("refusal")))
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Responses tool as a chat tool: function tools only (the hosted tools run on OpenAI's side).
fn chat_tool(tool: &Value, i: usize) -> Result<Value, ApiError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return Err(invalid(format!("`tools[{i}]` needs a `name`")));
            };
            let mut function = json!({"name": name});
            for field in ["description", "parameters", "strict"] {
                if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                    function[field] = v.clone();
                }
            }
            Ok(json!({"type": "function", "function": function}))
        }
        other => Err(unsupported(format!(
            "`tools[{i}]` is of type {}; the router takes function tools (hosted tools run only on OpenAI's side)",
            other.unwrap_or("(none)")
        ))),
    }
}

fn tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
                None => Err(invalid("`tool_choice` of type function needs a `name`")),
            }
        }
        _ => Err(unsupported(
            "`tool_choice` must be auto, none, required or {\"type\": \"function\", \"name\": ...}",
        )),
    }
}

/// `text.format` as chat's `response_format` (`None` for plain text).
fn response_format(format: &Value) -> Result<Option<Value>, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for field in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(field).filter(|v| !v.is_null()) {
                    schema.insert(field.into(), v.clone());
                }
            }
            if !schema.contains_key("name") || !schema.contains_key("schema") {
                return Err(invalid(
                    "`text.format` of type json_schema needs `name` and `schema`",
                ));
            }
            Ok(Some(
                json!({"type": "json_schema", "json_schema": Value::Object(schema)}),
            ))
        }
        Some(other) => Err(unsupported(format!(
            "`text.format` of type {other} is not supported (text, json_object, json_schema)"
        ))),
    }
}

/// A chat completion's output as Response items: the message (when it has text), then its
/// function calls.
fn output_items(message: &Value, msg_id: &str) -> Vec<Value> {
    let mut output = Vec::new();
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        output.push(message_item(msg_id, text, "completed"));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let call_id = call.get("id").and_then(Value::as_str).unwrap_or("call");
        let name = call.pointer("/function/name").cloned().unwrap_or(json!(""));
        let arguments = call
            .pointer("/function/arguments")
            .cloned()
            .unwrap_or(json!("{}"));
        output.push(call_item(
            &item_id("fc", call_id),
            call_id,
            &name,
            &arguments,
            "completed",
        ));
    }
    output
}

/// A chat completion as a Response.
pub fn response_from_chat(c: &Value, echo: &Echo) -> Value {
    let chat_id = c.get("id").and_then(Value::as_str).unwrap_or("");
    let message = c.pointer("/choices/0/message").unwrap_or(&Value::Null);
    let status = Status::from_finish(
        c.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str),
    );
    response_object(
        echo,
        &item_id("resp", chat_id),
        c.get("model").unwrap_or(&Value::Null),
        c.get("created").unwrap_or(&json!(0)),
        status,
        output_items(message, &item_id("msg", chat_id)),
        Usage::from_openai(c),
    )
}

/// Turn an incoming Responses request into the chat request the router routes, in place. A body
/// over the size limit is left for the chat path to refuse with its usual error.
pub fn into_chat<S>(req: &mut Incoming, max_body_bytes: usize) -> Result<Echo, Reply<S>> {
    let converted = match &req.body {
        Body::Bytes(b) if b.len() <= max_body_bytes => serde_json::from_slice::<Value>(b)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("the request body is not valid JSON: {e}"),
                )
            })
            .and_then(|v| request_to_chat(&v).map(|converted| (converted, v))),
        Body::Bytes(_) | Body::TooLarge { .. } => return Ok(Echo::default()),
    };
    match converted {
        Ok(((body, mut echo), original)) => {
            // The request as it came, for targets it passes through to (parsed once).
            if let Value::Object(original) = original {
                echo.original = original;
            }
            req.body = Body::Bytes(body.to_string().into_bytes());
            Ok(echo)
        }
        Err(e) => Err(Reply::error(&e)),
    }
}

/// Turn the chat path's reply into the Responses API's: a Response, its event stream, or the
/// error as it is (the Responses API's errors have chat's shape).
pub fn reply_from_chat<B>(reply: &mut ChatReply<B>, echo: Echo) {
    let body = std::mem::replace(&mut reply.body, ReplyBody::Bytes(Vec::new()));
    reply.body = match body {
        // A target that speaks the Responses API streamed its own events.
        ReplyBody::Stream(streamed) if streamed.watch.passes_responses() => {
            ReplyBody::Stream(streamed)
        }
        ReplyBody::Stream(mut streamed) => {
            streamed.prefix = streamed.watch.serve_responses_front(&streamed.prefix, echo);
            ReplyBody::Stream(streamed)
        }
        ReplyBody::Bytes(bytes) if reply.status == 200 => {
            let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            // A target that speaks the Responses API answered with a Response already.
            match parsed.get("object").and_then(Value::as_str) {
                Some("response") => ReplyBody::Bytes(bytes),
                _ => ReplyBody::Bytes(response_from_chat(&parsed, &echo).to_string().into_bytes()),
            }
        }
        ReplyBody::Bytes(bytes) => ReplyBody::Bytes(bytes),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_chat_requests() {
        let req = json!({
            "model": "auto", "instructions": "Be brief.", "max_output_tokens": 300, "temperature": 0.2,
            "stream": true, "metadata": {"team": "web"}, "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}},
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Look"},
                                              {"type": "input_image", "image_url": "data:image/png;base64,AAA"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"},
                {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call_output", "call_id": "call_1", "output": "done"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "ok"}]},
                {"role": "developer", "content": "Now answer."}
            ],
            "tools": [{"type": "function", "name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "f"}
        });
        let (chat, echo) = request_to_chat(&req).unwrap();
        assert_eq!(
            chat,
            json!({
                "model": "auto", "stream": true, "temperature": 0.2, "max_completion_tokens": 300,
                "metadata": {"team": "web"}, "reasoning_effort": "low",
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
                    {"role": "assistant", "content": "Calling.", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "done"},
                    {"role": "tool", "tool_call_id": "call_2", "content": "ok"},
                    {"role": "system", "content": "Now answer."}
                ],
                "tools": [{"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}}
            })
        );
        assert_eq!(echo.fields["instructions"], "Be brief.");
        assert_eq!(echo.fields["max_output_tokens"], 300);
        assert_eq!(echo.fields["parallel_tool_calls"], true);

        let (plain, echo) = request_to_chat(&json!({"model": "auto", "input": "hi"})).unwrap();
        assert_eq!(
            plain,
            json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
        );
        assert_eq!(echo.fields["tools"], json!([]));
        assert_eq!(echo.fields["tool_choice"], "auto");
        assert_eq!(echo.fields["text"], json!({"format": {"type": "text"}}));
    }

    #[test]
    fn what_needs_state_or_hosted_tools_is_refused_with_a_stable_code() {
        let table = [
            (
                json!({"model": "auto", "input": "hi", "previous_response_id": "resp_1"}),
                ErrorCode::UnsupportedParameter,
                "previous_response_id",
            ),
            (
                json!({"model": "auto", "input": "hi", "conversation": "conv_1"}),
                ErrorCode::UnsupportedParameter,
                "conversation",
            ),
            (
                json!({"model": "auto", "input": "hi", "background": true}),
                ErrorCode::UnsupportedParameter,
                "background",
            ),
            (
                json!({"model": "auto", "input": "hi", "tools": [{"type": "web_search"}]}),
                ErrorCode::UnsupportedParameter,
                "web_search",
            ),
            (
                json!({"model": "auto", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                ErrorCode::UnsupportedParameter,
                "item_reference",
            ),
            (
                json!({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
                ErrorCode::UnsupportedParameter,
                "input_file",
            ),
            (
                json!({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
                ErrorCode::UnsupportedParameter,
                "uploaded file",
            ),
            (
                json!({"model": "auto", "input": "hi", "text": {"format": {"type": "json_schema"}}}),
                ErrorCode::InvalidRequest,
                "needs `name` and `schema`",
            ),
            (
                json!({"model": "auto"}),
                ErrorCode::InvalidRequest,
                "`input` must be",
            ),
            (
                json!({"model": "auto", "input": [{"type": "function_call", "name": "f"}]}),
                ErrorCode::InvalidRequest,
                "call_id",
            ),
            (
                json!({"model": "auto", "input": [{"role": "tool", "content": "x"}]}),
                ErrorCode::InvalidRequest,
                "role",
            ),
            (json!([1]), ErrorCode::InvalidRequest, "JSON object"),
        ];
        for (req, code, says) in table {
            let err = request_to_chat(&req).unwrap_err();
            assert_eq!(err.code, code, "{req}");
            assert!(err.message.contains(says), "{req}: {}", err.message);
        }
        // Store is accepted (the Response says `store: false`); reasoning items are dropped.
        assert!(request_to_chat(&json!({"model": "auto", "input": "hi", "store": true})).is_ok());
    }

    #[test]
    fn completions_become_responses() {
        let (_, echo) =
            request_to_chat(&json!({"model": "auto", "input": "hi", "instructions": "x"})).unwrap();
        let c = json!({"id": "chatcmpl-9z", "model": "m", "created": 1700000000,
            "choices": [{"message": {"role": "assistant", "content": "Hi", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}});
        let r = response_from_chat(&c, &echo);
        assert_eq!(r["id"], "resp_chatcmpl9z");
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["created_at"], 1700000000);
        assert_eq!(r["instructions"], "x");
        assert_eq!(r["store"], false);
        assert_eq!(
            r["output"],
            json!([
                {"type": "message", "id": "msg_chatcmpl9z", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]},
                {"type": "function_call", "id": "fc_call1", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}", "status": "completed"}
            ])
        );
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 3,
                   "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 13})
        );
        let cut = json!({"id": "c", "choices": [{"message": {"content": "Hel"}, "finish_reason": "length"}]});
        let r = response_from_chat(&cut, &echo);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(r["usage"], Value::Null);
        let filtered = json!({"id": "c", "choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]});
        let r = response_from_chat(&filtered, &echo);
        assert_eq!(
            (r["status"].as_str(), &r["incomplete_details"]["reason"]),
            (Some("incomplete"), &json!("content_filter"))
        );
    }
}
