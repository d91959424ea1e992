//! Anthropic's Messages API: OpenAI-shaped requests translated to `POST <base_url>/v1/messages`,
//! and answers (whole or streamed) translated back to OpenAI's shape. Wire details stay here:
//! system prompt extraction, content blocks (text, images), tool use and tool results, stop
//! reasons, the required `max_tokens`, the `anthropic-version` and `x-api-key` headers.

use crate::chat::request::ChatRequest;
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::error::ApiError;
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::ProviderApi;
use crate::providers::api::{
    body_with_overrides, call_arguments, push_turn, ChunkHead, StreamTranslator as Translate,
    Translated,
};
use crate::providers::errors::ErrorKind;
use crate::rules::Provider;
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "2023-06-01";
/// The tool that carries `response_format` (JSON output) to Anthropic, which has no such parameter:
/// the answer is this tool's input, returned to the caller as the message content.
pub const JSON_TOOL: &str = "router_json_output";
/// Anthropic requires `max_tokens`; used when the caller gives none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Text of an OpenAI `content` (a string or text parts).
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// OpenAI content parts as Anthropic content blocks.
fn blocks_of(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(parts)) => parts.iter().filter_map(block_of_part).collect(),
        _ => Vec::new(),
    }
}

fn block_of_part(part: &Value) -> Option<Value> {
    match part.get("type").and_then(Value::as_str)? {
        "text" => Some(json!({"type": "text", "text": part.get("text")?.as_str()?})),
        "image_url" => {
            let url = part.pointer("/image_url/url").and_then(Value::as_str)?;
            // data:image/png;base64,AAAA -> a base64 source; anything else -> a URL source.
            match url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"))
            {
                Some((media_type, data)) => Some(
                    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
                ),
                None => Some(json!({"type": "image", "source": {"type": "url", "url": url}})),
            }
        }
        _ => None,
    }
}

/// Append a message, merging with the previous one of the same role (Anthropic alternates roles).
fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    push_turn(messages, role, "content", blocks);
}

/// An OpenAI tool call (`{"id", "function": {"name", "arguments"}}`) as an Anthropic `tool_use`
/// block; arguments that are not JSON become `{}`.
pub fn tool_use_block(call: &Value) -> Value {
    json!({
        "type": "tool_use",
        "id": call.get("id").cloned().unwrap_or(Value::Null),
        "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
        "input": call_arguments(call),
    })
}

fn finish_reason(stop_reason: Option<&str>) -> Value {
    match stop_reason {
        Some("end_turn" | "stop_sequence" | "pause_turn") => json!("stop"),
        Some("max_tokens") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) | None => Value::Null,
    }
}

fn usage_of(u: Option<&Value>) -> Usage {
    let n = |k: &str| {
        u.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = n("cache_read_input_tokens");
    Usage {
        input: n("input_tokens") + cached + n("cache_creation_input_tokens"),
        output: n("output_tokens"),
        cached_input: cached,
    }
}

/// A whole Anthropic message as an OpenAI chat completion.
pub fn response_to_openai(msg: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut json_answer = false;
    for block in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                // In JSON mode the answer is the JSON alone, whatever text came before it.
                text = block.get("input").map_or("{}".into(), Value::to_string);
                json_answer = true;
            }
            Some("tool_use") => calls.push(json!({
                "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": block.get("input").map_or("{}".into(), Value::to_string)}
            })),
            _ => {}
        }
    }
    let calls_empty = calls.is_empty();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": msg.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": created,
        "model": msg.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": if json_answer && calls_empty { json!("stop") }
                                      else { finish_reason(msg.get("stop_reason").and_then(Value::as_str)) }}],
        "usage": usage_of(msg.get("usage")).to_openai(),
    })
}

/// Translation state of one Anthropic stream.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    head: ChunkHead,
    /// For each content block index, its OpenAI tool-call index (tool_use blocks only).
    tool_index: Vec<(u64, usize)>,
    /// The block carrying a JSON answer (the `JSON_TOOL` call), streamed as content.
    json_block: Option<u64>,
    pub usage: Usage,
    stop: Option<String>,
}

impl StreamTranslator {
    pub fn new(created: u64) -> Self {
        StreamTranslator {
            head: ChunkHead {
                created,
                ..Default::default()
            },
            ..Self::default()
        }
    }
}

impl Translate for StreamTranslator {
    fn usage(&self) -> Usage {
        self.usage
    }

    fn usage_chunk(&self) -> Value {
        self.head.usage_chunk(self.usage)
    }

    fn on_event(&mut self, data: &Value) -> Translated {
        match data.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = &data["message"];
                self.head.id = m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.head.model = m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.usage = usage_of(m.get("usage"));
                Translated::Chunks(vec![self
                    .head
                    .chunk(json!({"role": "assistant", "content": ""}), Value::Null)])
            }
            "content_block_start" => {
                let block = &data["content_block"];
                if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) {
                    self.json_block = data.get("index").and_then(Value::as_u64);
                    return Translated::Content(Vec::new());
                }
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let k = self.tool_index.len();
                    self.tool_index.push((index, k));
                    let call = json!({"index": k, "id": block.get("id"), "type": "function",
                                      "function": {"name": block.get("name"), "arguments": ""}});
                    return Translated::Content(vec![self
                        .head
                        .chunk(json!({"tool_calls": [call]}), Value::Null)]);
                }
                Translated::Content(Vec::new())
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let out = match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        vec![self
                            .head
                            .chunk(json!({"content": delta.get("text")}), Value::Null)]
                    }
                    Some("input_json_delta") if self.json_block == Some(index) => {
                        vec![self
                            .head
                            .chunk(json!({"content": delta.get("partial_json")}), Value::Null)]
                    }
                    Some("input_json_delta") => {
                        let k = self
                            .tool_index
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map_or(0, |(_, k)| *k);
                        let call = json!({"index": k, "function": {"arguments": delta.get("partial_json")}});
                        vec![self.head.chunk(json!({"tool_calls": [call]}), Value::Null)]
                    }
                    _ => Vec::new(),
                };
                Translated::Content(out)
            }
            "message_delta" => {
                if let Some(out) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output = out;
                }
                self.stop = data
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let finish = if self.json_block.is_some() && self.tool_index.is_empty() {
                    json!("stop")
                } else {
                    finish_reason(self.stop.as_deref())
                };
                Translated::Content(vec![self.head.chunk(json!({}), finish)])
            }
            "message_stop" => Translated::Done(Vec::new()),
            "error" => Translated::Error,
            // ping, content_block_stop, and event types added later.
            _ => Translated::Chunks(Vec::new()),
        }
    }
}

/// Anthropic's Messages API.
pub struct Anthropic;

impl ProviderApi for Anthropic {
    /// The Anthropic request for one attempt.
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest {
        let src = body_with_overrides(req, attempt);
        let mut system = Vec::new();
        let mut messages: Vec<Value> = Vec::new();
        for m in src
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let content = m.get("content");
            match m.get("role").and_then(Value::as_str).unwrap_or("") {
                "system" | "developer" => system.push(text_of(content)),
                "assistant" => {
                    let mut blocks = blocks_of(content);
                    blocks.extend(
                        m.get("tool_calls")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(tool_use_block),
                    );
                    push(&mut messages, "assistant", blocks);
                }
                "tool" => push(
                    &mut messages,
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                                "content": text_of(content)}),
                    ],
                ),
                _ => push(&mut messages, "user", blocks_of(content)),
            }
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(attempt.model_id.clone()));
        body.insert("messages".into(), Value::Array(messages));
        if !system.is_empty() {
            body.insert("system".into(), Value::String(system.join("\n\n")));
        }
        let max_tokens = src
            .get("max_completion_tokens")
            .or_else(|| src.get("max_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_TOKENS);
        body.insert("max_tokens".into(), max_tokens.into());
        for (from, to) in [
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("top_k", "top_k"),
        ] {
            if let Some(v) = src.get(from) {
                body.insert(to.into(), v.clone());
            }
        }
        match src.get("stop") {
            Some(Value::String(s)) => {
                body.insert("stop_sequences".into(), json!([s]));
            }
            Some(Value::Array(list)) => {
                body.insert("stop_sequences".into(), Value::Array(list.clone()));
            }
            _ => {}
        }
        if let Some(tools) = src.get("tools").and_then(Value::as_array) {
            let tools: Vec<Value> = tools
                .iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    Some(json!({"name": f.get("name")?, "description": f.get("description").cloned().unwrap_or(Value::Null),
                                "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}))}))
                })
                .map(|mut t| {
                    if t["description"].is_null() {
                        if let Some(o) = t.as_object_mut() {
                            o.remove("description");
                        }
                    }
                    t
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        let choice = match src.get("tool_choice") {
            Some(Value::String(s)) if s == "auto" => Some(json!({"type": "auto"})),
            Some(Value::String(s)) if s == "required" => Some(json!({"type": "any"})),
            Some(Value::String(s)) if s == "none" => Some(json!({"type": "none"})),
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"type": "tool", "name": n})),
            _ => None,
        };
        if let Some(c) = choice {
            body.insert("tool_choice".into(), c);
        }
        if let Some(user) = src.get("user").and_then(Value::as_str) {
            body.insert("metadata".into(), json!({"user_id": user}));
        }
        // JSON output, as Anthropic documents it: a tool whose input is the answer, forced.
        let format = src.get("response_format");
        let schema = match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
            Some("json_object") => Some(json!({"type": "object"})),
            Some("json_schema") => Some(
                format
                    .and_then(|f| f.pointer("/json_schema/schema"))
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            ),
            _ => None,
        };
        if let Some(schema) = schema {
            let tool = json!({"name": JSON_TOOL, "description": "Give the answer as JSON matching this schema.", "input_schema": schema});
            match body.get_mut("tools").and_then(Value::as_array_mut) {
                Some(tools) => tools.push(tool),
                None => {
                    body.insert("tools".into(), json!([tool]));
                }
            }
            body.insert(
                "tool_choice".into(),
                json!({"type": "tool", "name": JSON_TOOL}),
            );
        }
        if req.stream {
            body.insert("stream".into(), Value::Bool(true));
        }
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("anthropic-version".to_string(), API_VERSION.to_string()),
        ];
        if req.stream {
            headers.push(("accept".into(), "text/event-stream".into()));
        }
        if let Some(key) = key {
            headers.push(("x-api-key".into(), key.expose().to_string()));
        }
        headers.extend(provider.headers.iter().cloned());
        UpstreamRequest {
            url: format!("{}/v1/messages", provider.base_url.trim_end_matches("/v1")),
            headers,
            body: Value::Object(body).to_string().into_bytes(),
        }
    }

    fn answer_to_openai(
        &self,
        _provider: &Provider,
        answer: &Value,
        _id: &str,
        created: u64,
    ) -> Result<Option<Value>, (ApiError, ErrorKind)> {
        Ok(Some(response_to_openai(answer, created)))
    }

    fn stream_translator(&self, _id: &str, created: u64) -> Option<Box<dyn Translate>> {
        Some(Box::new(StreamTranslator::new(created)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;

    fn provider() -> Provider {
        fixtures::provider(
            "anthropic",
            ProviderKind::Anthropic,
            "https://api.anthropic.com",
            Some("ANTHROPIC_API_KEY"),
        )
    }

    fn attempt() -> Attempt {
        fixtures::attempt("strong", "anthropic", "claude-sonnet-4-5")
    }

    fn build(body: Value) -> (UpstreamRequest, Value) {
        let req = fixtures::chat(&body);
        let out = Anthropic.build_request(
            &provider(),
            &attempt(),
            &req,
            Some(&Secret::new("sk-ant-1")),
        );
        let sent = serde_json::from_slice(&out.body).unwrap();
        (out, sent)
    }

    #[test]
    fn requests_translate_system_content_tools_and_params() {
        let (out, sent) = build(json!({
            "model": "auto", "max_tokens": 300, "temperature": 0.2, "stop": ["END"], "user": "u-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                              {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                                              {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }));
        assert_eq!(out.url, "https://api.anthropic.com/v1/messages");
        assert!(out
            .headers
            .contains(&("x-api-key".into(), "sk-ant-1".into())));
        assert!(out
            .headers
            .contains(&("anthropic-version".into(), API_VERSION.into())));
        assert!(!out.headers.iter().any(|(k, _)| k == "authorization"));
        assert_eq!(
            sent,
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 300, "temperature": 0.2, "stop_sequences": ["END"],
                "system": "Be brief.\n\nAnswer in English.", "metadata": {"user_id": "u-1"},
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
                                                 {"type": "text", "text": "Thanks"}]}
                ],
                "tools": [{"name": "get_weather", "description": "Weather by city",
                           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "tool", "name": "get_weather"}
            })
        );
    }

    #[test]
    fn max_tokens_is_required_and_streams_ask_for_events() {
        let (out, sent) = build(
            json!({"model": "auto", "stream": true, "tool_choice": "required",
                                       "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(sent["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["tool_choice"], json!({"type": "any"}));
        assert!(out
            .headers
            .contains(&("accept".into(), "text/event-stream".into())));
    }

    #[test]
    fn json_output_rides_a_forced_tool() {
        let (_, sent) = build(
            json!({"model": "auto", "messages": [{"role": "user", "content": "Extract"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}),
        );
        assert_eq!(
            sent["tools"],
            json!([{"name": JSON_TOOL, "description": "Give the answer as JSON matching this schema.",
                                          "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}])
        );
        assert_eq!(
            sent["tool_choice"],
            json!({"type": "tool", "name": JSON_TOOL})
        );
        let msg = json!({"id": "m", "model": "c", "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"n": 3}}],
                         "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 2}});
        let out = response_to_openai(&msg, 0);
        assert_eq!(
            out["choices"][0]["message"],
            json!({"role": "assistant", "content": "{\"n\":3}"})
        );
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        let mut t = StreamTranslator::new(0);
        t.on_event(&json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 5}}}));
        t.on_event(&json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {}}}));
        let Translated::Content(c) = t.on_event(&json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"n\":"}})) else { panic!("content") };
        assert_eq!(c[0]["choices"][0]["delta"], json!({"content": "{\"n\":"}));
        let Translated::Content(c) = t.on_event(&json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 2}})) else { panic!("content") };
        assert_eq!(c[0]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn responses_translate_back() {
        // Anthropic's documented response shape.
        let msg = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5}});
        let out = response_to_openai(&msg, 7);
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["content"], "Let me check.");
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
        );
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 135, "completion_tokens": 20, "total_tokens": 155,
                                        "prompt_tokens_details": {"cached_tokens": 30}})
        );
        for (reason, want) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("refusal", "content_filter"),
        ] {
            let out = response_to_openai(&json!({"content": [], "stop_reason": reason}), 0);
            assert_eq!(out["choices"][0]["finish_reason"], want);
        }
    }

    #[test]
    fn streams_translate_event_by_event() {
        // Anthropic's documented stream, text then a tool call.
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                   "model": "claude-sonnet-4-5", "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
            json!({"type": "message_stop"}),
        ];
        let mut t = StreamTranslator::new(9);
        let results: Vec<Translated> = events.iter().map(|e| t.on_event(e)).collect();
        let chunks = |r: &Translated| match r {
            Translated::Chunks(c) | Translated::Content(c) | Translated::Done(c) => c.clone(),
            Translated::Error => panic!("error"),
        };
        assert!(
            matches!(results[0], Translated::Chunks(_)),
            "message_start is not content yet"
        );
        assert_eq!(
            chunks(&results[0])[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert!(matches!(results[1], Translated::Content(_)));
        assert!(chunks(&results[2]).is_empty());
        assert_eq!(
            chunks(&results[3])[0]["choices"][0]["delta"],
            json!({"content": "Hello"})
        );
        assert_eq!(
            chunks(&results[5])[0]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}})
        );
        assert_eq!(
            chunks(&results[7])[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "1}"
        );
        assert_eq!(
            chunks(&results[8])[0]["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(results[9], Translated::Done(Vec::new()));
        assert_eq!(chunks(&results[3])[0]["id"], "msg_1");
        assert_eq!(
            t.usage,
            Usage {
                input: 25,
                output: 15,
                cached_input: 0
            }
        );
        assert_eq!(t.on_event(&json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})), Translated::Error);
    }
}
