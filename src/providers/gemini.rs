//! Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`): OpenAI-shaped requests
//! translated to contents and parts, `systemInstruction`, `generationConfig` and function
//! declarations; answers and streamed candidates translated back to OpenAI's shape. A prompt or
//! answer blocked for safety is an error (content filtered), not an empty answer.

use crate::chat::request::{embedding_texts, ChatRequest};
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::error::{ApiError, ErrorCode};
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::ProviderApi;
use crate::providers::api::{
    body_with_overrides, call_arguments, embedding_list, path_segment, push_turn, ChunkHead,
    StreamTranslator as Translate, Translated,
};
use crate::providers::errors::ErrorKind;
use crate::rules::Provider;
use serde_json::{json, Map, Value};

fn parts_of(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![json!({"text": s})],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str)? {
                "text" => Some(json!({"text": p.get("text")?})),
                "image_url" => {
                    let url = p.pointer("/image_url/url").and_then(Value::as_str)?;
                    match url
                        .strip_prefix("data:")
                        .and_then(|r| r.split_once(";base64,"))
                    {
                        Some((mime, data)) => {
                            Some(json!({"inline_data": {"mime_type": mime, "data": data}}))
                        }
                        None => {
                            Some(json!({"file_data": {"mime_type": "image/*", "file_uri": url}}))
                        }
                    }
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    push_turn(contents, role, "parts", parts);
}

fn finish_reason(reason: Option<&str>, has_calls: bool) -> Value {
    match reason {
        None => Value::Null,
        Some(_) if has_calls => json!("tool_calls"),
        Some("STOP") => json!("stop"),
        Some("MAX_TOKENS") => json!("length"),
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY",
        ) => {
            json!("content_filter")
        }
        Some(_) => json!("stop"),
    }
}

fn usage_of(meta: Option<&Value>) -> Option<Usage> {
    let m = meta?;
    let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input: n("promptTokenCount"),
        output: n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cached_input: n("cachedContentTokenCount"),
    })
}

/// Why Gemini refused, if it did: a blocked prompt, or a candidate stopped for safety with nothing
/// in it. Such answers are errors (content filtered), not empty completions.
pub fn blocked(resp: &Value) -> Option<String> {
    if let Some(reason) = resp
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        return Some(format!("the prompt was blocked ({reason})"));
    }
    let c = resp.pointer("/candidates/0")?;
    let reason = c.get("finishReason").and_then(Value::as_str)?;
    let empty = c
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .is_none_or(|p| p.is_empty());
    let safety = matches!(
        reason,
        "SAFETY" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "RECITATION"
    );
    (safety && empty).then(|| format!("the answer was blocked ({reason})"))
}

/// Text and tool calls of one candidate's parts.
fn split_parts(parts: Option<&Value>, first_call: usize) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in parts.and_then(Value::as_array).into_iter().flatten() {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(fc) = p.get("functionCall") {
            let k = first_call + calls.len();
            calls.push(json!({"index": k, "id": fc.get("id").cloned().unwrap_or_else(|| json!(format!("call_{k}"))),
                              "type": "function",
                              "function": {"name": fc.get("name"), "arguments": fc.get("args").map_or("{}".into(), Value::to_string)}}));
        }
    }
    (text, calls)
}

/// A whole Gemini answer as an OpenAI chat completion (call `blocked` first).
pub fn response_to_openai(resp: &Value, id: &str, created: u64) -> Value {
    let c = resp
        .pointer("/candidates/0")
        .cloned()
        .unwrap_or(Value::Null);
    let (text, mut calls) = split_parts(c.pointer("/content/parts"), 0);
    for call in &mut calls {
        if let Some(o) = call.as_object_mut() {
            o.remove("index");
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls.clone());
    }
    let u = usage_of(resp.get("usageMetadata")).unwrap_or_default();
    json!({
        "id": id, "object": "chat.completion", "created": created,
        "model": resp.get("modelVersion").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": finish_reason(c.get("finishReason").and_then(Value::as_str), !calls.is_empty())}],
        "usage": u.to_openai(),
    })
}

/// Translation state of one Gemini stream: each event is a partial answer; the one with a
/// `finishReason` ends it (Gemini sends no `[DONE]`).
#[derive(Debug, Default)]
pub struct StreamTranslator {
    head: ChunkHead,
    started: bool,
    calls: usize,
    pub usage: Usage,
}

impl StreamTranslator {
    pub fn new(id: String, created: u64) -> Self {
        StreamTranslator {
            head: ChunkHead {
                id,
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
        if data.get("error").is_some() || blocked(data).is_some() {
            return Translated::Error;
        }
        if let Some(m) = data.get("modelVersion").and_then(Value::as_str) {
            self.head.model = m.to_string();
        }
        if let Some(u) = usage_of(data.get("usageMetadata")) {
            self.usage = u;
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(
                self.head
                    .chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            );
        }
        let c = data
            .pointer("/candidates/0")
            .cloned()
            .unwrap_or(Value::Null);
        let (text, calls) = split_parts(c.pointer("/content/parts"), self.calls);
        self.calls += calls.len();
        if !text.is_empty() {
            out.push(self.head.chunk(json!({"content": text}), Value::Null));
        }
        if !calls.is_empty() {
            out.push(self.head.chunk(json!({"tool_calls": calls}), Value::Null));
        }
        match c.get("finishReason").and_then(Value::as_str) {
            Some(reason) => {
                out.push(
                    self.head
                        .chunk(json!({}), finish_reason(Some(reason), self.calls > 0)),
                );
                Translated::Done(out)
            }
            None => Translated::Content(out),
        }
    }
}

/// Google Gemini.
pub struct Gemini;

/// `POST <base_url>/v1beta/models/<model id>:<method>` with the key and the provider's headers.
fn model_call(
    provider: &Provider,
    attempt: &Attempt,
    method: &str,
    body: &Value,
    key: Option<&Secret>,
) -> UpstreamRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = key {
        headers.push(("x-goog-api-key".into(), key.expose().to_string()));
    }
    headers.extend(provider.headers.iter().cloned());
    UpstreamRequest {
        url: format!(
            "{}/v1beta/models/{}:{method}",
            provider.base_url,
            path_segment(&attempt.model_id)
        ),
        headers,
        body: body.to_string().into_bytes(),
    }
}

/// The most requests one `batchEmbedContents` call takes.
const MAX_EMBEDDING_BATCH: usize = 100;

impl ProviderApi for Gemini {
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest {
        let src = body_with_overrides(req, attempt);
        let messages = src
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut system = Vec::new();
        let mut contents = Vec::new();
        // Gemini answers a function by name; OpenAI by call id: remember which id named which function.
        let mut call_names: Map<String, Value> = Map::new();
        for m in &messages {
            let content = m.get("content");
            match m.get("role").and_then(Value::as_str).unwrap_or("") {
                "system" | "developer" => system.extend(parts_of(content)),
                "assistant" => {
                    let mut parts = parts_of(content);
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let name = call
                            .pointer("/function/name")
                            .cloned()
                            .unwrap_or(Value::Null);
                        if let Some(id) = call.get("id").and_then(Value::as_str) {
                            call_names.insert(id.to_string(), name.clone());
                        }
                        parts.push(json!({"functionCall": {"name": name,
                            "args": call_arguments(call)}}));
                    }
                    push(&mut contents, "model", parts);
                }
                "tool" => {
                    let name = m
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .and_then(|id| call_names.get(id).cloned())
                        .unwrap_or(Value::Null);
                    let text = match content {
                        Some(Value::String(s)) => s.clone(),
                        other => other.map(Value::to_string).unwrap_or_default(),
                    };
                    let response = serde_json::from_str::<Value>(&text)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({"content": text}));
                    push(
                        &mut contents,
                        "user",
                        vec![json!({"functionResponse": {"name": name, "response": response}})],
                    );
                }
                _ => push(&mut contents, "user", parts_of(content)),
            }
        }
        let mut body = Map::new();
        body.insert("contents".into(), Value::Array(contents));
        if !system.is_empty() {
            body.insert("systemInstruction".into(), json!({"parts": system}));
        }
        let mut config = Map::new();
        for (from, to) in [
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("top_k", "topK"),
            ("seed", "seed"),
            ("n", "candidateCount"),
        ] {
            if let Some(v) = src.get(from) {
                config.insert(to.into(), v.clone());
            }
        }
        if let Some(v) = src
            .get("max_completion_tokens")
            .or_else(|| src.get("max_tokens"))
        {
            config.insert("maxOutputTokens".into(), v.clone());
        }
        match src.get("stop") {
            Some(Value::String(s)) => {
                config.insert("stopSequences".into(), json!([s]));
            }
            Some(Value::Array(list)) => {
                config.insert("stopSequences".into(), Value::Array(list.clone()));
            }
            _ => {}
        }
        let format = src.get("response_format");
        match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
            Some("json_object") => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                config.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = format.and_then(|f| f.pointer("/json_schema/schema")) {
                    config.insert("responseJsonSchema".into(), schema.clone());
                }
            }
            _ => {}
        }
        if !config.is_empty() {
            body.insert("generationConfig".into(), Value::Object(config));
        }
        if let Some(tools) = src.get("tools").and_then(Value::as_array) {
            let decls: Vec<Value> = tools
                .iter()
                .filter_map(|t| t.get("function").cloned())
                .collect();
            body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        }
        let mode = match src.get("tool_choice") {
            Some(Value::String(s)) if s == "auto" => Some(json!({"mode": "AUTO"})),
            Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
            Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"mode": "ANY", "allowedFunctionNames": [n]})),
            _ => None,
        };
        if let Some(m) = mode {
            body.insert("toolConfig".into(), json!({"functionCallingConfig": m}));
        }
        let method = if req.stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        model_call(provider, attempt, method, &Value::Object(body), key)
    }

    /// `batchEmbedContents`: one request per input text, `dimensions` as `outputDimensionality`.
    fn build_embeddings(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> Result<UpstreamRequest, String> {
        let src = body_with_overrides(req, attempt);
        let texts = embedding_texts(&src);
        if texts.is_empty() {
            return Err(format!(
                "provider \"{}\" (gemini) embeds text, not token ids",
                provider.name
            ));
        }
        if texts.len() > MAX_EMBEDDING_BATCH {
            return Err(format!(
                "provider \"{}\" (gemini) embeds at most {MAX_EMBEDDING_BATCH} inputs per request (got {})",
                provider.name,
                texts.len()
            ));
        }
        let model = format!("models/{}", attempt.model_id);
        let dimensions = src.get("dimensions").filter(|d| d.is_u64());
        let requests: Vec<Value> = texts
            .iter()
            .map(|t| {
                let mut r = json!({"model": model, "content": {"parts": [{"text": t}]}});
                if let Some(d) = dimensions {
                    r["outputDimensionality"] = d.clone();
                }
                r
            })
            .collect();
        let body = json!({"requests": requests});
        Ok(model_call(
            provider,
            attempt,
            "batchEmbedContents",
            &body,
            key,
        ))
    }

    /// `{"embeddings": [{"values": [...]}]}` as OpenAI's list (Gemini reports no usage).
    fn embeddings_to_openai(
        &self,
        answer: &Value,
        model: &str,
        encoding: Option<&str>,
    ) -> Result<Option<Value>, String> {
        let list = answer
            .get("embeddings")
            .and_then(Value::as_array)
            .ok_or("an answer without `embeddings`")?;
        let rows = list.iter().map(|e| {
            e.get("values")
                .and_then(Value::as_array)
                .ok_or("an embedding without `values`")
        });
        embedding_list(rows, model, encoding).map(Some)
    }

    fn answer_to_openai(
        &self,
        provider: &Provider,
        answer: &Value,
        id: &str,
        created: u64,
    ) -> Result<Option<Value>, (ApiError, ErrorKind)> {
        match blocked(answer) {
            Some(why) => Err((
                ApiError::new(
                    ErrorCode::ContentFiltered,
                    format!("provider \"{}\" refused: {why}", provider.name),
                ),
                ErrorKind::ContentFiltered,
            )),
            None => Ok(Some(response_to_openai(answer, id, created))),
        }
    }

    fn stream_translator(&self, id: &str, created: u64) -> Option<Box<dyn Translate>> {
        Some(Box::new(StreamTranslator::new(id.to_string(), created)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;

    fn provider() -> Provider {
        fixtures::provider(
            "gemini",
            ProviderKind::Gemini,
            "https://generativelanguage.googleapis.com",
            Some("GEMINI_API_KEY"),
        )
    }

    fn build(body: Value) -> (UpstreamRequest, Value) {
        let attempt = fixtures::attempt("flash", "gemini", "gemini-2.5-flash");
        let req = fixtures::chat(&body);
        let out = Gemini.build_request(&provider(), &attempt, &req, Some(&Secret::new("g-key")));
        let sent = serde_json::from_slice(&out.body).unwrap();
        (out, sent)
    }

    #[test]
    fn requests_translate() {
        let (out, sent) = build(json!({
            "model": "auto", "max_tokens": 200, "temperature": 0.1, "top_p": 0.9, "stop": "END",
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                {"role": "tool", "tool_call_id": "call_7", "content": "{\"answer\": 42}"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": "auto"
        }));
        assert_eq!(out.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
        assert!(out
            .headers
            .contains(&("x-goog-api-key".into(), "g-key".into())));
        assert_eq!(
            sent,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "Look"}, {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/"}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "x"}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"answer": 42}}}]}
                ],
                "generationConfig": {"maxOutputTokens": 200, "temperature": 0.1, "topP": 0.9, "stopSequences": ["END"],
                                     "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
                "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
            })
        );
        let (out, _) = build(
            json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(out.url.ends_with(":streamGenerateContent?alt=sse"));
    }

    #[test]
    fn embeddings_translate_both_ways() {
        use crate::chat::request::parse_embeddings;
        let attempt = fixtures::attempt("e", "gemini", "gemini-embedding-001");
        let body = json!({"model": "e", "input": ["a", "b"], "dimensions": 3});
        let req =
            parse_embeddings(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20).unwrap();
        let out = Gemini
            .build_embeddings(&provider(), &attempt, &req, Some(&Secret::new("g")))
            .unwrap();
        assert_eq!(out.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents");
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            sent["requests"][1],
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3})
        );
        let tokens = json!({"model": "e", "input": [[1, 2]]});
        let req =
            parse_embeddings(&Body::Bytes(tokens.to_string().into_bytes()), None, 1 << 20).unwrap();
        assert!(Gemini
            .build_embeddings(&provider(), &attempt, &req, None)
            .unwrap_err()
            .contains("token ids"));

        // The documented answer shape.
        let answer = json!({"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]});
        let openai = Gemini
            .embeddings_to_openai(&answer, "gemini-embedding-001", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            openai,
            json!({"object": "list", "model": "gemini-embedding-001", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.25, 2.0]}]})
        );
        let b64 = Gemini
            .embeddings_to_openai(&answer, "m", Some("base64"))
            .unwrap()
            .unwrap();
        // 0.5f32 and -1.0f32, little-endian.
        assert_eq!(b64["data"][0]["embedding"], "AAAAPwAAgL8=");
        assert!(Gemini
            .embeddings_to_openai(&json!({"error": 1}), "m", None)
            .is_err());
    }

    #[test]
    fn responses_and_safety_blocks() {
        // Gemini's documented response shape.
        let resp = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello "}, {"text": "there"},
                              {"functionCall": {"name": "lookup", "args": {"q": "x"}}}]}, "finishReason": "STOP", "index": 0}],
                          "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13, "cachedContentTokenCount": 2},
                          "modelVersion": "gemini-2.5-flash"});
        assert_eq!(blocked(&resp), None);
        let out = response_to_openai(&resp, "chatcmpl-g1", 5);
        assert_eq!(out["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}})
        );
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13, "prompt_tokens_details": {"cached_tokens": 2}})
        );
        assert_eq!(out["model"], "gemini-2.5-flash");
        let prompt_blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(
            blocked(&prompt_blocked).as_deref(),
            Some("the prompt was blocked (SAFETY)")
        );
        let answer_blocked =
            json!({"candidates": [{"finishReason": "SAFETY", "safetyRatings": []}]});
        assert!(blocked(&answer_blocked).is_some());
        let max = json!({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]});
        assert_eq!(
            response_to_openai(&max, "x", 0)["choices"][0]["finish_reason"],
            "length"
        );
    }

    #[test]
    fn streams_translate() {
        let mut t = StreamTranslator::new("chatcmpl-g2".into(), 3);
        let first = t.on_event(&json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "modelVersion": "gemini-2.5-flash"}));
        let Translated::Content(chunks) = first else {
            panic!("content expected")
        };
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
        let last = t.on_event(&json!({"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
                                      "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}}));
        let Translated::Done(chunks) = last else {
            panic!("done expected")
        };
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "lo");
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            t.usage,
            Usage {
                input: 5,
                output: 2,
                cached_input: 0
            }
        );
        assert_eq!(t.usage_chunk()["usage"]["completion_tokens"], 2);
        assert_eq!(
            t.on_event(
                &json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
            ),
            Translated::Error
        );
        assert_eq!(
            t.on_event(&json!({"promptFeedback": {"blockReason": "SAFETY"}})),
            Translated::Error
        );
    }
}
