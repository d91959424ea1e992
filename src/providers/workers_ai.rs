//! Cloudflare Workers AI through the Worker's `AI` binding (`env.AI.run(model, inputs)`): no URL,
//! no key, no trip across the internet. The request is the model's input object (`messages`,
//! `max_tokens`, sampling, `tools`, `response_format`, `stream`; `text` for embedding models),
//! carried by the `Upstream` port's `run_ai`. Answers come as `{response, tool_calls, usage}`
//! (or, from models that speak OpenAI's format, as chat completions, passed through), streams as
//! `data: {"response": "..."}` events ending with the usage and `[DONE]`, embeddings as
//! `{shape, data}`; all become OpenAI's shapes here.

use crate::chat::request::{embedding_texts, ChatRequest};
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::error::ApiError;
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::{
    body_with_overrides, embedding_list, ChunkHead, ProviderApi, StreamTranslator, Translated,
};
use crate::providers::errors::ErrorKind;
use crate::rules::Provider;
use serde_json::{json, Map, Value};

/// Workers AI: a binding's model, OpenAI's shapes made from its own.
pub struct WorkersAi;

/// Input fields passed on under the same name.
const SAME_NAME: [&str; 10] = [
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "tools",
    "response_format",
    "stream",
];

/// A message's content as the single string Workers AI models take (text parts joined).
fn text_of(content: Option<&Value>) -> Value {
    match content {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => Value::String(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => Value::String(String::new()),
    }
}

impl ProviderApi for WorkersAi {
    fn build_request(
        &self,
        _provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        _key: Option<&Secret>,
    ) -> UpstreamRequest {
        let src = body_with_overrides(req, attempt);
        let messages: Vec<Value> = src
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| {
                let mut out = Map::new();
                out.insert(
                    "role".into(),
                    m.get("role").cloned().unwrap_or(json!("user")),
                );
                out.insert("content".into(), text_of(m.get("content")));
                for field in ["tool_calls", "tool_call_id", "name"] {
                    if let Some(v) = m.get(field).filter(|v| !v.is_null()) {
                        out.insert(field.into(), v.clone());
                    }
                }
                Value::Object(out)
            })
            .collect();
        let mut body = Map::new();
        body.insert("messages".into(), Value::Array(messages));
        for field in SAME_NAME {
            if let Some(v) = src.get(field).filter(|v| !v.is_null()) {
                body.insert(field.into(), v.clone());
            }
        }
        if let Some(v) = src
            .get("max_completion_tokens")
            .or_else(|| src.get("max_tokens"))
        {
            body.insert("max_tokens".into(), v.clone());
        }
        // Workers AI's JSON mode takes the schema itself under `json_schema`.
        if let Some(schema) = src
            .get("response_format")
            .and_then(|f| f.pointer("/json_schema/schema"))
        {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        UpstreamRequest {
            url: format!("workers-ai:{}", attempt.model_id),
            headers: Vec::new(),
            body: Value::Object(body).to_string().into_bytes(),
        }
    }

    fn answer_to_openai(
        &self,
        _provider: &Provider,
        answer: &Value,
        id: &str,
        created: u64,
    ) -> Result<Option<Value>, (ApiError, ErrorKind)> {
        if answer.get("choices").is_some() {
            return Ok(None);
        }
        let content = match answer.get("response") {
            Some(Value::String(s)) => json!(s),
            None | Some(Value::Null) => Value::Null,
            // JSON mode: some models give the object itself.
            Some(other) => json!(other.to_string()),
        };
        let calls = tool_calls(answer.get("tool_calls"), 0);
        let finish = if calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls.into_iter().map(|(_, c)| c).collect());
        }
        let mut out = json!({"id": id, "object": "chat.completion", "created": created, "model": Value::Null,
                             "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}]});
        if let Some(usage) = Usage::from_openai(answer) {
            out["usage"] = usage.to_openai();
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

    /// `{text: ...}` for the model (text only: Workers AI embeds no token ids).
    fn build_embeddings(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        _key: Option<&Secret>,
    ) -> Result<UpstreamRequest, String> {
        let src = body_with_overrides(req, attempt);
        let text = embedding_texts(&src);
        if text.is_empty() {
            return Err(format!(
                "provider \"{}\" (workers_ai) embeds text, not token ids",
                provider.name
            ));
        }
        Ok(UpstreamRequest {
            url: format!("workers-ai:{}", attempt.model_id),
            headers: Vec::new(),
            body: json!({"text": text}).to_string().into_bytes(),
        })
    }

    /// `{shape: [n, d], data: [[...], ...]}` as OpenAI's list (no usage reported).
    fn embeddings_to_openai(
        &self,
        answer: &Value,
        model: &str,
        encoding: Option<&str>,
    ) -> Result<Option<Value>, String> {
        if answer.get("object").and_then(Value::as_str) == Some("list") {
            return Ok(None);
        }
        let rows = answer
            .get("data")
            .and_then(Value::as_array)
            .ok_or("an answer without `data`")?;
        let rows = rows
            .iter()
            .map(|row| row.as_array().ok_or("an embedding that is not a list"));
        embedding_list(rows, model, encoding).map(Some)
    }
}

/// Workers AI tool calls (`{name, arguments}`, arguments an object or a string) as OpenAI's,
/// numbered from `first`, each with its stream index.
fn tool_calls(calls: Option<&Value>, first: usize) -> Vec<(usize, Value)> {
    calls
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let index = first + i;
            let f = c.get("function").unwrap_or(c);
            let arguments = match f.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "{}".into(),
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{index}"), str::to_string);
            let call = json!({"id": id, "type": "function",
                              "function": {"name": f.get("name"), "arguments": arguments}});
            (index, call)
        })
        .collect()
}

/// A Workers AI stream as OpenAI chunks.
#[derive(Debug, Default)]
struct Translator {
    head: ChunkHead,
    started: bool,
    /// The stream's tool-call indexes (its own, or the order calls came in) -> OpenAI's.
    calls: Vec<u64>,
    /// A finish reason already passed on (streams in OpenAI's format carry their own).
    finished: bool,
    usage: Usage,
}

impl Translator {
    /// One streamed tool-call piece as an OpenAI delta: a call's first piece carries its id and
    /// name, later ones (the same `index`) only argument text; `None` for an empty piece (the
    /// binding ends a call with one).
    fn call_delta(&mut self, piece: &Value) -> Option<Value> {
        let f = piece.get("function").unwrap_or(piece);
        let name = f
            .get("name")
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()));
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let key = piece
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(self.calls.len() as u64);
        let known = self.calls.iter().position(|k| *k == key);
        match (known, name) {
            (Some(index), _) if !arguments.is_empty() => {
                Some(json!({"index": index, "function": {"arguments": arguments}}))
            }
            (Some(_), _) | (None, None) => None,
            (None, Some(name)) => {
                let index = self.calls.len();
                self.calls.push(key);
                let id = piece
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{index}"), str::to_string);
                Some(json!({"index": index, "id": id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}))
            }
        }
    }
}

impl StreamTranslator for Translator {
    fn on_event(&mut self, data: &Value) -> Translated {
        if let Some(u) = Usage::from_openai(data).filter(|_| !data["usage"].is_null()) {
            self.usage = u;
        }
        // Models that speak OpenAI's format stream its chunks: passed on.
        if data.get("choices").is_some() {
            let has_delta = data
                .pointer("/choices/0/delta")
                .is_some_and(|d| d.get("content").is_some() || d.get("tool_calls").is_some());
            let finish = data
                .pointer("/choices/0/finish_reason")
                .is_some_and(|f| !f.is_null());
            self.finished |= finish;
            let chunk = data.clone();
            return match (has_delta, finish) {
                (true, _) => Translated::Content(vec![chunk]),
                (false, true) => Translated::Chunks(vec![chunk]),
                (false, false) => Translated::Chunks(Vec::new()),
            };
        }
        let mut chunks = Vec::new();
        if !self.started {
            self.started = true;
            chunks.push(
                self.head
                    .chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            );
        }
        let mut content = false;
        if let Some(text) = data
            .get("response")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            chunks.push(self.head.chunk(json!({"content": text}), Value::Null));
            content = true;
        }
        for piece in data
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(call) = self.call_delta(piece) {
                chunks.push(self.head.chunk(json!({"tool_calls": [call]}), Value::Null));
                content = true;
            }
        }
        match content {
            true => Translated::Content(chunks),
            false => Translated::Chunks(chunks),
        }
    }

    fn on_done(&mut self) -> Translated {
        if self.finished {
            return Translated::Done(Vec::new());
        }
        let finish = if self.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        Translated::Done(vec![self.head.chunk(json!({}), json!(finish))])
    }

    fn set_model(&mut self, model: &str) {
        self.head.model = model.to_string();
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
    use crate::chat::request::parse_embeddings;
    use crate::http::Body;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;

    fn provider() -> Provider {
        fixtures::provider("cf", ProviderKind::WorkersAi, "", None)
    }

    fn attempt() -> Attempt {
        fixtures::attempt("llama", "cf", "@cf/meta/llama-3.1-8b-instruct")
    }

    #[test]
    fn requests_become_model_inputs() {
        let body = json!({"model": "auto", "max_completion_tokens": 64, "temperature": 0.2, "stream": true, "user": "u",
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "x"}}]},
                         {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        let req = fixtures::chat(&body);
        let out = WorkersAi.build_request(&provider(), &attempt(), &req, None);
        assert_eq!(out.url, "workers-ai:@cf/meta/llama-3.1-8b-instruct");
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            sent,
            json!({"max_tokens": 64, "temperature": 0.2, "stream": true,
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Look"},
                                {"role": "tool", "content": "sunny", "tool_call_id": "call_0"}]})
        );
    }

    #[test]
    fn answers_become_completions() {
        // The documented text-generation output.
        let answer = json!({"response": "Hello!", "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}});
        let c = WorkersAi
            .answer_to_openai(&provider(), &answer, "chatcmpl-1", 7)
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["message"]["content"], "Hello!");
        assert_eq!(c["choices"][0]["finish_reason"], "stop");
        assert_eq!(Usage::from_openai(&c).unwrap().input, 9);
        let calls = json!({"response": null, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]});
        let c = WorkersAi
            .answer_to_openai(&provider(), &calls, "chatcmpl-2", 7)
            .unwrap()
            .unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
        );
        let openai = json!({"id": "x", "choices": [{"message": {"content": "hi"}}]});
        assert_eq!(
            WorkersAi
                .answer_to_openai(&provider(), &openai, "i", 0)
                .unwrap(),
            None
        );
    }

    #[test]
    fn streams_become_chunks() {
        let mut t = WorkersAi.stream_translator("chatcmpl-3", 5).unwrap();
        let Translated::Content(first) = t.on_event(&json!({"response": "Hel", "p": "abc"})) else {
            panic!("content expected")
        };
        assert_eq!(first.len(), 2, "the role chunk, then the text");
        assert_eq!(first[1]["choices"][0]["delta"]["content"], "Hel");
        assert!(
            matches!(t.on_event(&json!({"response": "", "usage": {"prompt_tokens": 4, "completion_tokens": 2}})), Translated::Chunks(c) if c.is_empty())
        );
        let Translated::Done(last) = t.on_done() else {
            panic!("done expected")
        };
        assert_eq!(last[0]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            t.usage(),
            Usage {
                input: 4,
                output: 2,
                cached_input: 0
            }
        );
    }

    #[test]
    fn streamed_tool_calls_are_joined_by_index() {
        let mut t = WorkersAi.stream_translator("c", 5).unwrap();
        let pieces = [
            json!({"tool_calls": [{"id": "chatcmpl-tool-1", "index": 0, "type": "function", "function": {"name": "get_weather"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            json!({"tool_calls": [{"id": null, "type": "function", "function": {"name": null}}]}),
        ];
        let mut calls = Vec::new();
        for p in &pieces {
            match t.on_event(p) {
                Translated::Content(c) | Translated::Chunks(c) => calls.extend(
                    c.iter()
                        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0").cloned()),
                ),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[0]["id"], "chatcmpl-tool-1");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let args: String = calls
            .iter()
            .filter_map(|c| c.pointer("/function/arguments")?.as_str())
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        assert!(calls.iter().all(|c| c["index"] == 0));
        let Translated::Done(last) = t.on_done() else {
            panic!()
        };
        assert_eq!(last[0]["choices"][0]["finish_reason"], "tool_calls");
        // OpenAI-format streams keep their own finish reason, and no second one is added.
        let mut o = WorkersAi.stream_translator("c", 5).unwrap();
        let fin =
            o.on_event(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}));
        assert!(
            matches!(fin, Translated::Chunks(c) if c[0]["choices"][0]["finish_reason"] == "length")
        );
        assert_eq!(o.on_done(), Translated::Done(Vec::new()));
    }

    #[test]
    fn embeddings_both_ways() {
        let body = json!({"model": "e", "input": ["a", "b"]});
        let req =
            parse_embeddings(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20).unwrap();
        let out = WorkersAi
            .build_embeddings(&provider(), &attempt(), &req, None)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out.body).unwrap(),
            json!({"text": ["a", "b"]})
        );
        let tokens = json!({"model": "e", "input": [1, 2]});
        let req =
            parse_embeddings(&Body::Bytes(tokens.to_string().into_bytes()), None, 1 << 20).unwrap();
        assert!(WorkersAi
            .build_embeddings(&provider(), &attempt(), &req, None)
            .is_err());
        // The documented bge output.
        let answer = json!({"shape": [2, 2], "data": [[0.5, 1.0], [0.25, 0.0]], "pooling": "mean"});
        let list = WorkersAi
            .embeddings_to_openai(&answer, "@cf/baai/bge-base-en-v1.5", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            list["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.25, 0.0]})
        );
    }
}
