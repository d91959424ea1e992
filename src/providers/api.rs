//! What every provider kind implements (`ProviderApi`, one unit type per kind, each in its own
//! file) and the pieces their wire formats share: the caller's body with an attempt's overrides,
//! turns merged by role, OpenAI chunks built from a translated stream, and percent-encoding for
//! the parts of a URL that come from the rules.

use crate::chat::request::ChatRequest;
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::error::ApiError;
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::errors::ErrorKind;
use crate::rules::Provider;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// One provider kind's wire format.
pub trait ProviderApi: Sync {
    /// The provider request for one attempt.
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        chat: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest;

    /// A whole answer in OpenAI's shape (`id` and `created` for kinds that carry none), `None`
    /// when it already is (passed on byte for byte), or the failure it really is (a Gemini
    /// safety block).
    fn answer_to_openai(
        &self,
        _provider: &Provider,
        _answer: &Value,
        _id: &str,
        _created: u64,
    ) -> Result<Option<Value>, (ApiError, ErrorKind)> {
        Ok(None)
    }

    /// Sign a built request just before it is sent (`now_ms` for the signature's time), or say
    /// why it cannot be: only kinds whose requests carry a signature do anything.
    fn sign(
        &self,
        _provider: &Provider,
        _request: &mut UpstreamRequest,
        _key: Option<&Secret>,
        _now_ms: f64,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Whether this kind streams in the AWS event-stream binary framing rather than SSE.
    fn event_stream_framing(&self) -> bool {
        false
    }

    /// What turns this kind's stream events into OpenAI chunks; `None` when they already are.
    fn stream_translator(&self, _id: &str, _created: u64) -> Option<Box<dyn StreamTranslator>> {
        None
    }

    /// The provider request for an embeddings attempt (`req.endpoint` is Embeddings), or why this
    /// kind cannot carry it (validation keeps embedding models off kinds without the API).
    fn build_embeddings(
        &self,
        provider: &Provider,
        _attempt: &Attempt,
        _req: &ChatRequest,
        _key: Option<&Secret>,
    ) -> Result<UpstreamRequest, String> {
        Err(format!(
            "provider \"{}\" ({}) has no embeddings API",
            provider.name,
            provider.kind.as_str()
        ))
    }

    /// An embeddings answer in OpenAI's shape (`float` or `base64` vectors, as `encoding`
    /// asks), `None` when it already is, or why it is not an answer.
    fn embeddings_to_openai(
        &self,
        _answer: &Value,
        _model: &str,
        _encoding: Option<&str>,
    ) -> Result<Option<Value>, String> {
        Ok(None)
    }
}

/// Translation state of one provider stream whose events are not OpenAI chunks.
pub trait StreamTranslator: std::fmt::Debug {
    fn on_event(&mut self, data: &Value) -> Translated;
    /// A `[DONE]` event (the kinds that end their streams with one).
    fn on_done(&mut self) -> Translated {
        Translated::Done(Vec::new())
    }
    /// The provider's model id, for the chunks of kinds whose streams do not name it.
    fn set_model(&mut self, _model: &str) {}
    /// The usage reported so far.
    fn usage(&self) -> Usage;
    /// The usage chunk OpenAI sends last when `stream_options.include_usage` is set.
    fn usage_chunk(&self) -> Value;
}

/// What one provider stream event means for the OpenAI stream.
#[derive(Debug, PartialEq)]
pub enum Translated {
    /// OpenAI chunks to send (possibly none, for pings and block boundaries).
    Chunks(Vec<Value>),
    /// The first content (a block started or a delta): the stream may be committed to.
    Content(Vec<Value>),
    /// The provider says the answer is complete.
    Done(Vec<Value>),
    /// The provider reports an error inside the stream.
    Error,
}

/// The caller's body with the attempt's overrides applied: what every wire format starts from.
pub fn body_with_overrides(req: &ChatRequest, attempt: &Attempt) -> serde_json::Map<String, Value> {
    let mut body = req.body.clone();
    for (k, v) in &attempt.overrides {
        body.insert(k.clone(), v.clone());
    }
    body
}

/// Append a turn, merging it into the previous one of the same role (Anthropic and Gemini want
/// roles to alternate). `field` is where the turn keeps its pieces (`content` or `parts`).
pub fn push_turn(turns: &mut Vec<Value>, role: &str, field: &str, mut pieces: Vec<Value>) {
    if pieces.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last[field].as_array_mut() {
                existing.append(&mut pieces);
                return;
            }
        }
    }
    let mut turn = serde_json::Map::new();
    turn.insert("role".into(), Value::String(role.to_string()));
    turn.insert(field.into(), Value::Array(pieces));
    turns.push(Value::Object(turn));
}

/// What every OpenAI chunk of one translated stream carries: the answer's id, model and creation
/// time. The Anthropic and Gemini stream translators build their chunks with it.
#[derive(Debug, Default)]
pub struct ChunkHead {
    pub id: String,
    pub model: String,
    pub created: u64,
}

impl ChunkHead {
    /// One `chat.completion.chunk` with a single choice.
    pub fn chunk(&self, delta: Value, finish: Value) -> Value {
        serde_json::json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }

    /// The usage-only chunk OpenAI sends last when `stream_options.include_usage` is set.
    pub fn usage_chunk(&self, usage: Usage) -> Value {
        serde_json::json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                           "choices": [], "usage": usage.to_openai()})
    }
}

/// An OpenAI tool call's `arguments` (a JSON string) as the value providers take as a call's
/// input; `{}` when they are not JSON.
pub fn call_arguments(call: &Value) -> Value {
    let args = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("{}");
    serde_json::from_str(args).unwrap_or_else(|_| serde_json::json!({}))
}

/// Embeddings as OpenAI's list: each row of numbers (or why a row is not one) in order, as
/// `vector` encodes them.
pub fn embedding_list<'a>(
    rows: impl Iterator<Item = Result<&'a Vec<Value>, &'static str>>,
    model: &str,
    encoding: Option<&str>,
) -> Result<Value, String> {
    let mut data = Vec::new();
    for (i, row) in rows.enumerate() {
        let embedding = vector(row?, encoding);
        data.push(serde_json::json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    Ok(serde_json::json!({"object": "list", "data": data, "model": model}))
}

/// An embedding's numbers as OpenAI sends them: a JSON array, or with `encoding` `base64` the
/// little-endian 32-bit floats in base64.
pub fn vector(values: &[Value], encoding: Option<&str>) -> Value {
    if encoding != Some("base64") {
        return Value::Array(values.to_vec());
    }
    use base64::Engine;
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
        .collect();
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Unreserved characters stay, and in a path segment also `+`, `=` and `@` (model ids such as
/// `gemini-2.5-flash` or `name@version`); everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH_SEGMENT: &AsciiSet = &QUERY_VALUE.remove(b'+').remove(b'=').remove(b'@');

/// A path segment that comes from the rules (a model id, a deployment name), percent-encoded.
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// A query value that comes from the rules (an API version), percent-encoded.
pub fn query_value(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}
