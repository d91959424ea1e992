//! Amazon Bedrock's Converse API: OpenAI-shaped requests translated to `POST
//! <base_url>/model/<model id>/converse` (or `/converse-stream`, whose answer is the AWS
//! event-stream binary framing, decoded by `stream::eventstream`), signed with AWS Signature
//! Version 4 (`sigv4`) when the provider's secret holds `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:TOKEN]`,
//! or sent with a Bedrock API key as a bearer token. System prompts, images (data URLs), tool
//! calls and results, tools and tool choice, `maxTokens`, sampling and stop sequences translate
//! both ways; stop reasons and usage come back in OpenAI's shape.

use crate::chat::request::ChatRequest;
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::error::{ApiError, ErrorCode};
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::{
    body_with_overrides, call_arguments, path_segment, push_turn, ChunkHead, ProviderApi,
    StreamTranslator, Translated,
};
use crate::providers::errors::ErrorKind;
use crate::providers::sigv4::{self, Credentials};
use crate::rules::Provider;
use serde_json::{json, Map, Value};

/// Amazon Bedrock (Converse / ConverseStream).
pub struct Bedrock;

/// The service name requests are signed for.
const SERVICE: &str = "bedrock";

/// An OpenAI content value as Converse content blocks: text, and images given as data URLs.
fn blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![json!({"text": s})],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => p.get("text").map(|t| json!({"text": t})),
                Some("image_url") => {
                    let url = p.pointer("/image_url/url").and_then(Value::as_str)?;
                    let (head, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
                    let format = head.strip_prefix("image/").unwrap_or("png");
                    let format = if format == "jpg" { "jpeg" } else { format };
                    Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `toolUse` and `toolResult` blocks as text blocks, for a request sent without tools.
fn tools_as_text(messages: &mut [Value]) {
    for block in messages
        .iter_mut()
        .filter_map(|m| m.get_mut("content").and_then(Value::as_array_mut))
        .flatten()
    {
        let text = if let Some(u) = block.get("toolUse") {
            format!("[called tool {} with {}]", u["name"], u["input"])
        } else if let Some(r) = block.get("toolResult") {
            let out: Vec<&str> = r["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect();
            format!("[tool result: {}]", out.join("\n"))
        } else {
            continue;
        };
        *block = json!({"text": text});
    }
}

/// A Converse stop reason as OpenAI's `finish_reason`.
fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

fn usage_of(usage: Option<&Value>) -> Option<Usage> {
    let u = usage?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    // Converse's `inputTokens` leaves out the tokens read from and written to the prompt cache.
    Some(Usage {
        input: n("inputTokens") + n("cacheReadInputTokens") + n("cacheWriteInputTokens"),
        output: n("outputTokens"),
        cached_input: n("cacheReadInputTokens"),
    })
}

/// The region a provider's requests are signed for: its `region`, else the one in
/// `bedrock-runtime.<region>.amazonaws.com`.
pub fn region(provider: &Provider) -> Option<String> {
    if let Some(r) = &provider.region {
        return Some(r.clone());
    }
    let host = url::Url::parse(&provider.base_url)
        .ok()?
        .host_str()?
        .to_string();
    let rest = host.strip_prefix("bedrock-runtime.")?;
    let region = rest.split('.').next()?;
    rest.contains(".amazonaws.com").then(|| region.to_string())
}

impl ProviderApi for Bedrock {
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest {
        let src = body_with_overrides(req, attempt);
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in src
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let content = m.get("content");
            match m.get("role").and_then(Value::as_str).unwrap_or("") {
                "system" | "developer" => system.extend(blocks(content)),
                "assistant" => {
                    let mut parts = blocks(content);
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        // Converse takes an object as a tool's input.
                        let input = Some(call_arguments(call))
                            .filter(Value::is_object)
                            .unwrap_or_else(|| json!({}));
                        parts.push(json!({"toolUse": {"toolUseId": call.get("id"),
                            "name": call.pointer("/function/name"), "input": input}}));
                    }
                    push_turn(&mut messages, "assistant", "content", parts);
                }
                "tool" => {
                    let text = match content {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Array(parts)) => parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        _ => String::new(),
                    };
                    let result = json!({"toolResult": {"toolUseId": m.get("tool_call_id"),
                                                       "content": [{"text": text}]}});
                    push_turn(&mut messages, "user", "content", vec![result]);
                }
                _ => push_turn(&mut messages, "user", "content", blocks(content)),
            }
        }
        let mut body = Map::new();
        body.insert("messages".into(), Value::Array(messages));
        if !system.is_empty() {
            body.insert("system".into(), Value::Array(system));
        }
        let mut config = Map::new();
        if let Some(v) = src
            .get("max_completion_tokens")
            .or_else(|| src.get("max_tokens"))
        {
            config.insert("maxTokens".into(), v.clone());
        }
        for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
            if let Some(v) = src.get(from).filter(|v| !v.is_null()) {
                config.insert(to.into(), v.clone());
            }
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
        if !config.is_empty() {
            body.insert("inferenceConfig".into(), Value::Object(config));
        }
        let choice = src.get("tool_choice");
        let tools: Vec<Value> = src
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let schema = f
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"}));
                let mut spec = json!({"name": f.get("name"), "inputSchema": {"json": schema}});
                if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                    spec["description"] = d.clone();
                }
                json!({"toolSpec": spec})
            })
            .collect();
        // Converse has no "none": a request that forbids tools is sent without them; and without
        // a `toolConfig` Converse refuses `toolUse` and `toolResult` blocks, so a conversation
        // that has them tells of its tool calls in text instead.
        let send_tools = !tools.is_empty() && choice.and_then(Value::as_str) != Some("none");
        if !send_tools {
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                tools_as_text(messages);
            }
        }
        if send_tools {
            let mut tool_config = json!({"tools": tools});
            let chosen = match choice {
                Some(Value::String(s)) if s == "required" => Some(json!({"any": {}})),
                Some(Value::String(s)) if s == "auto" => Some(json!({"auto": {}})),
                Some(Value::Object(o)) => o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .map(|n| json!({"tool": {"name": n}})),
                _ => None,
            };
            if let Some(c) = chosen {
                tool_config["toolChoice"] = c;
            }
            body.insert("toolConfig".into(), tool_config);
        }
        let method = if req.stream {
            "converse-stream"
        } else {
            "converse"
        };
        let accept = if req.stream {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        };
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("accept".to_string(), accept.to_string()),
        ];
        headers.extend(provider.headers.iter().cloned());
        // A Bedrock API key goes as a bearer token; AWS credentials sign the request (`sign`).
        // Anything with a `:` is meant as credentials and is never sent as a token.
        if let Some(key) = key.filter(|k| !k.expose().contains(':')) {
            headers.push(("authorization".into(), format!("Bearer {}", key.expose())));
        }
        UpstreamRequest {
            url: format!(
                "{}/model/{}/{method}",
                provider.base_url,
                path_segment(&attempt.model_id)
            ),
            headers,
            body: Value::Object(body).to_string().into_bytes(),
        }
    }

    fn sign(
        &self,
        provider: &Provider,
        request: &mut UpstreamRequest,
        key: Option<&Secret>,
        now_ms: f64,
    ) -> Result<(), ApiError> {
        let misconfigured = |m: String| ApiError::new(ErrorCode::ProviderKeyMissing, m);
        let Some(key) = key.filter(|k| k.expose().contains(':')) else {
            return Ok(());
        };
        let Some(credentials) = Credentials::parse(key.expose()) else {
            return Err(misconfigured(format!(
                "provider \"{}\": its secret holds a `:` but is not ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]",
                provider.name
            )));
        };
        let region = region(provider).ok_or_else(|| {
            misconfigured(format!(
                "provider \"{}\" needs a `region` to sign requests for (its base_url does not name one)",
                provider.name
            ))
        })?;
        let url = url::Url::parse(&request.url)
            .map_err(|e| misconfigured(format!("provider \"{}\": {e}", provider.name)))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(misconfigured("a URL without a host".into())),
        };
        // The host header is sent by the runtime from the URL; it is signed, not added.
        let mut signed_headers = vec![("host".to_string(), host)];
        signed_headers.extend(
            request
                .headers
                .iter()
                .filter(|(k, _)| k == "content-type")
                .cloned(),
        );
        let amz_date = sigv4::amz_date(now_ms);
        let added = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                path: url.path(),
                query: url.query().unwrap_or(""),
                headers: &signed_headers,
                body: &request.body,
            },
            &credentials,
            &sigv4::Scope {
                region: &region,
                service: SERVICE,
                amz_date: &amz_date,
            },
        );
        request.headers.extend(added);
        Ok(())
    }

    fn answer_to_openai(
        &self,
        _provider: &Provider,
        answer: &Value,
        id: &str,
        created: u64,
    ) -> Result<Option<Value>, (ApiError, ErrorKind)> {
        let mut text = String::new();
        let mut calls = Vec::new();
        for block in answer
            .pointer("/output/message/content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = block.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
            if let Some(u) = block.get("toolUse") {
                calls.push(json!({"id": u.get("toolUseId"), "type": "function",
                    "function": {"name": u.get("name"), "arguments": u.get("input").map_or("{}".into(), Value::to_string)}}));
            }
        }
        let stop = answer.get("stopReason").and_then(Value::as_str);
        let content = if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        let mut out = json!({"id": id, "object": "chat.completion", "created": created, "model": Value::Null,
                             "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(stop)}]});
        if let Some(u) = usage_of(answer.get("usage")) {
            out["usage"] = u.to_openai();
        }
        Ok(Some(out))
    }

    fn stream_translator(&self, id: &str, created: u64) -> Option<Box<dyn StreamTranslator>> {
        Some(Box::new(Translator {
            head: ChunkHead {
                id: id.to_string(),
                model: String::new(),
                created,
            },
            ..Translator::default()
        }))
    }

    fn event_stream_framing(&self) -> bool {
        true
    }
}

/// A ConverseStream (decoded from its framing) as OpenAI chunks.
#[derive(Debug, Default)]
struct Translator {
    head: ChunkHead,
    started: bool,
    /// Converse content block index -> OpenAI tool-call index.
    calls: Vec<(u64, usize)>,
    usage: Usage,
}

impl StreamTranslator for Translator {
    fn on_event(&mut self, data: &Value) -> Translated {
        if data.get("exception").is_some() {
            return Translated::Error;
        }
        let mut chunks = Vec::new();
        if !self.started {
            self.started = true;
            chunks.push(
                self.head
                    .chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            );
        }
        if let Some(start) = data.get("contentBlockStart") {
            if let Some(tool) = start.pointer("/start/toolUse") {
                let block = start
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let index = self.calls.len();
                self.calls.push((block, index));
                let call = json!({"index": index, "id": tool.get("toolUseId"), "type": "function",
                                  "function": {"name": tool.get("name"), "arguments": ""}});
                chunks.push(self.head.chunk(json!({"tool_calls": [call]}), Value::Null));
                return Translated::Content(chunks);
            }
        }
        if let Some(delta) = data.get("contentBlockDelta") {
            let block = delta
                .get("contentBlockIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if let Some(text) = delta.pointer("/delta/text").and_then(Value::as_str) {
                chunks.push(self.head.chunk(json!({"content": text}), Value::Null));
                return Translated::Content(chunks);
            }
            if let Some(input) = delta
                .pointer("/delta/toolUse/input")
                .and_then(Value::as_str)
            {
                let index = self
                    .calls
                    .iter()
                    .find(|(b, _)| *b == block)
                    .map_or(0, |(_, i)| *i);
                let call = json!({"index": index, "function": {"arguments": input}});
                chunks.push(self.head.chunk(json!({"tool_calls": [call]}), Value::Null));
                return Translated::Content(chunks);
            }
        }
        if let Some(stop) = data.get("messageStop") {
            let reason = finish_reason(stop.get("stopReason").and_then(Value::as_str));
            chunks.push(self.head.chunk(json!({}), json!(reason)));
        }
        if let Some(meta) = data.get("metadata") {
            if let Some(u) = usage_of(meta.get("usage")) {
                self.usage = u;
            }
            // The last event of a ConverseStream.
            return Translated::Done(chunks);
        }
        Translated::Chunks(chunks)
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn usage_chunk(&self) -> Value {
        self.head.usage_chunk(self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;

    fn provider() -> Provider {
        fixtures::provider(
            "aws",
            ProviderKind::Bedrock,
            "https://bedrock-runtime.eu-west-1.amazonaws.com",
            Some("AWS_BEDROCK"),
        )
    }

    fn attempt() -> Attempt {
        fixtures::attempt("haiku", "aws", "anthropic.claude-3-haiku-20240307-v1:0")
    }

    fn request(body: Value) -> ChatRequest {
        fixtures::chat(&body)
    }

    #[test]
    fn requests_translate_to_converse() {
        let req = request(json!({
            "model": "auto", "max_tokens": 300, "temperature": 0.2, "top_p": 0.9, "stop": "END",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "done"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        }));
        let out = Bedrock.build_request(
            &provider(),
            &attempt(),
            &req,
            Some(&Secret::new("AKID:secret")),
        );
        assert_eq!(
            out.url,
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        assert!(
            !out.headers.iter().any(|(k, _)| k == "authorization"),
            "credentials sign, they are not sent"
        );
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            sent,
            json!({
                "system": [{"text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [{"text": "Look"}, {"image": {"format": "jpeg", "source": {"bytes": "AAA"}}}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"a": 1}}}]},
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "done"}]}}]}
                ],
                "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
                "toolConfig": {"tools": [{"toolSpec": {"name": "f", "description": "does f", "inputSchema": {"json": {"type": "object"}}}}],
                               "toolChoice": {"any": {}}}
            })
        );
        let stream = request(
            json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        );
        let out = Bedrock.build_request(
            &provider(),
            &attempt(),
            &stream,
            Some(&Secret::new("ABSKapikey")),
        );
        assert!(out.url.ends_with("/converse-stream"));
        assert!(out
            .headers
            .contains(&("authorization".into(), "Bearer ABSKapikey".into())));
    }

    #[test]
    fn requests_are_signed_for_the_region_in_the_url() {
        let req =
            request(json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}));
        let key = Secret::new("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let mut out = Bedrock.build_request(&provider(), &attempt(), &req, Some(&key));
        Bedrock
            .sign(&provider(), &mut out, Some(&key), 1_440_938_160_000.0)
            .unwrap();
        let header = |n: &str| {
            out.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("x-amz-date").as_deref(), Some("20150830T123600Z"));
        let auth = header("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="), "{auth}");
        let broken = Secret::new("AKID:SECRET:");
        let mut out = Bedrock.build_request(&provider(), &attempt(), &req, Some(&broken));
        assert!(
            !out.headers.iter().any(|(k, _)| k == "authorization"),
            "never sent as a token"
        );
        let err = Bedrock
            .sign(&provider(), &mut out, Some(&broken), 0.0)
            .unwrap_err();
        assert!(
            err.message.contains("ACCESS_KEY_ID:SECRET_ACCESS_KEY")
                && !err.message.contains("SECRET:")
        );
        let mut local = provider();
        local.base_url = "http://127.0.0.1:9000".into();
        let mut out = Bedrock.build_request(&local, &attempt(), &req, Some(&key));
        assert_eq!(
            Bedrock
                .sign(&local, &mut out, Some(&key), 0.0)
                .unwrap_err()
                .code,
            ErrorCode::ProviderKeyMissing
        );
        local.region = Some("us-west-2".into());
        Bedrock.sign(&local, &mut out, Some(&key), 0.0).unwrap();
    }

    #[test]
    fn tool_history_without_tools_is_told_in_text() {
        let req = request(json!({"model": "auto", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            {"role": "user", "content": "thanks, and tomorrow?"}]}));
        let out = Bedrock.build_request(&provider(), &attempt(), &req, None);
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert!(sent.get("toolConfig").is_none());
        assert_eq!(
            sent["messages"][1]["content"][0]["text"],
            "[called tool \"f\" with {}]"
        );
        assert_eq!(
            sent["messages"][2]["content"],
            json!([{"text": "[tool result: sunny]"}, {"text": "thanks, and tomorrow?"}])
        );
    }

    #[test]
    fn answers_translate_back() {
        // Converse's documented response shape.
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
                {"text": "Let me check."}, {"toolUse": {"toolUseId": "tooluse_2", "name": "f", "input": {"b": 2}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}, "metrics": {"latencyMs": 300}});
        let c = Bedrock
            .answer_to_openai(&provider(), &answer, "chatcmpl-1", 1)
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["message"]["content"], "Let me check.");
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0]["function"],
            json!({"name": "f", "arguments": "{\"b\":2}"})
        );
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            Usage::from_openai(&c),
            Some(Usage {
                input: 12,
                output: 7,
                cached_input: 0
            })
        );
        let cut = json!({"output": {"message": {"content": [{"text": "Hel"}]}}, "stopReason": "max_tokens"});
        let c = Bedrock
            .answer_to_openai(&provider(), &cut, "c", 1)
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn streams_translate_back() {
        let mut t = Bedrock.stream_translator("chatcmpl-9", 1).unwrap();
        let events = [
            json!({"messageStart": {"role": "assistant"}}),
            json!({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}}),
            json!({"contentBlockStop": {"contentBlockIndex": 0}}),
            json!({"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_3", "name": "f"}}}}),
            json!({"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}}}),
            json!({"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}}),
            json!({"messageStop": {"stopReason": "tool_use"}}),
            json!({"metadata": {"usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14}, "metrics": {"latencyMs": 1}}}),
        ];
        let out: Vec<Translated> = events.iter().map(|e| t.on_event(e)).collect();
        assert!(matches!(&out[0], Translated::Chunks(c) if c.len() == 1));
        let Translated::Content(text) = &out[1] else {
            panic!("{:?}", out[1])
        };
        assert_eq!(text[0]["choices"][0]["delta"]["content"], "Hi");
        let Translated::Content(start) = &out[3] else {
            panic!("{:?}", out[3])
        };
        assert_eq!(
            start[0]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "tooluse_3"
        );
        let Translated::Chunks(stop) = &out[6] else {
            panic!("{:?}", out[6])
        };
        assert_eq!(stop[0]["choices"][0]["finish_reason"], "tool_calls");
        assert!(matches!(&out[7], Translated::Done(_)));
        assert_eq!(
            t.usage(),
            Usage {
                input: 5,
                output: 9,
                cached_input: 0
            }
        );
        assert_eq!(
            t.on_event(&json!({"exception": "throttlingException", "message": "x"})),
            Translated::Error
        );
    }
}
