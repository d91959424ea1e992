//! Reading a chat-completions request: size limit, JSON, the fields routing needs, and the
//! caller's metadata (the `x-router-metadata` header and the `metadata` body field). Everything
//! else in the body is kept as it came, to be forwarded.

use crate::error::{ApiError, ErrorCode};
use crate::http::Body;
use serde_json::{Map, Value};

/// Default largest body accepted (bytes); the Worker's `MAX_BODY_BYTES` var overrides it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest `x-router-metadata` header accepted (bytes).
pub const MAX_METADATA_HEADER_BYTES: usize = 8 * 1024;
pub const METADATA_HEADER: &str = "x-router-metadata";

/// The API a request came through: what providers are asked for (a chat completion or
/// embeddings), and the record's `endpoint`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Endpoint {
    #[default]
    ChatCompletions,
    /// The Anthropic Messages API, served as chat.
    Messages,
    /// OpenAI's Responses API, served as chat.
    Responses,
    Embeddings,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// A request, parsed just enough to route it: a chat request, or (`endpoint` Embeddings) an
/// embeddings request, whose `input` stays in `body`.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The body as sent, minus `metadata` (routing input, not for providers).
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
    pub message_count: usize,
    /// Header metadata merged over body metadata.
    pub metadata: Map<String, Value>,
    /// Size of the body in bytes.
    pub size: usize,
    pub endpoint: Endpoint,
    /// Through the Responses front door: the Responses request as it came (minus `metadata`),
    /// passed through unchanged to targets that speak the Responses API.
    pub responses_request: Option<Map<String, Value>>,
}

pub fn parse_chat(
    body: &Body,
    metadata_header: Option<&str>,
    max_bytes: usize,
) -> Result<ChatRequest, ApiError> {
    let (mut body, model, size) = parse_object(body, max_bytes)?;
    let message_count = match body.get("messages") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, m) in items.iter().enumerate() {
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(invalid(format!(
                        "`messages[{i}]` must be an object with a string `role`"
                    )));
                }
            }
            items.len()
        }
        _ => return Err(invalid("`messages` must be a non-empty array")),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("`stream` must be true or false")),
    };
    let metadata = metadata(&mut body, metadata_header)?;
    Ok(ChatRequest {
        body,
        model,
        stream,
        message_count,
        metadata,
        size,
        endpoint: Endpoint::ChatCompletions,
        responses_request: None,
    })
}

/// Most inputs one embeddings request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// Read an embeddings request (`POST /v1/embeddings`): `model` names an embedding model of the
/// rules, `input` is a string, an array of strings, or token arrays.
pub fn parse_embeddings(
    body: &Body,
    metadata_header: Option<&str>,
    max_bytes: usize,
) -> Result<ChatRequest, ApiError> {
    let (mut body, model, size) = parse_object(body, max_bytes)?;
    let count = match body.get("input") {
        Some(Value::String(s)) if !s.is_empty() => 1,
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_EMBEDDING_INPUTS {
                return Err(invalid(format!(
                    "`input` has {} items; at most {MAX_EMBEDDING_INPUTS} are allowed",
                    items.len()
                )));
            }
            let text = items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| !s.is_empty()));
            let tokens = items.iter().all(Value::is_u64)
                || items.iter().all(|i| {
                    i.as_array()
                        .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_u64))
                });
            if !text && !tokens {
                return Err(invalid(
                    "`input` must be a non-empty string, an array of non-empty strings, an array of token ids, or an array of token-id arrays",
                ));
            }
            items.len()
        }
        _ => {
            return Err(invalid(
                "`input` must be a non-empty string or a non-empty array",
            ))
        }
    };
    match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float" | "base64") => {}
        Some(other) => {
            return Err(invalid(format!(
                "`encoding_format` must be float or base64, not {other}"
            )))
        }
    }
    if body
        .get("stream")
        .is_some_and(|s| s != &Value::Bool(false) && !s.is_null())
    {
        return Err(invalid("embeddings are not streamed"));
    }
    let metadata = metadata(&mut body, metadata_header)?;
    Ok(ChatRequest {
        body,
        model,
        stream: false,
        message_count: count,
        metadata,
        size,
        endpoint: Endpoint::Embeddings,
        responses_request: None,
    })
}

/// The texts of an embeddings request's `input` (none for token arrays).
pub fn embedding_texts(body: &Map<String, Value>) -> Vec<&str> {
    match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The body as a JSON object within the size limit, with its `model`.
fn parse_object(
    body: &Body,
    max_bytes: usize,
) -> Result<(Map<String, Value>, String, usize), ApiError> {
    let bytes = match body {
        Body::TooLarge { declared } => return Err(too_large(*declared as usize, max_bytes)),
        Body::Bytes(b) if b.len() > max_bytes => return Err(too_large(b.len(), max_bytes)),
        Body::Bytes(b) => b,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(body) = value else {
        return Err(invalid("the request body must be a JSON object"));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(invalid(
                "`model` must be a non-empty string (use \"auto\" to let the rules choose)",
            ))
        }
        None => {
            return Err(invalid(
                "`model` is required (use \"auto\" to let the rules choose)",
            ))
        }
    };
    Ok((body, model, bytes.len()))
}

/// The caller's metadata: the body's `metadata` (taken out of the body: routing input, not for
/// providers) with the header's merged over it.
fn metadata(
    body: &mut Map<String, Value>,
    metadata_header: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let mut metadata = match body.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidMetadata,
                "`metadata` must be a JSON object",
            ))
        }
    };
    if let Some(h) = metadata_header {
        metadata.extend(parse_metadata_header(h)?);
    }
    Ok(metadata)
}

fn parse_metadata_header(h: &str) -> Result<Map<String, Value>, ApiError> {
    if h.len() > MAX_METADATA_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!(
                "the {METADATA_HEADER} header is larger than {MAX_METADATA_HEADER_BYTES} bytes"
            ),
        ));
    }
    match serde_json::from_str(h) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!("the {METADATA_HEADER} header must hold a JSON object"),
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidMetadata,
            format!("the {METADATA_HEADER} header is not valid JSON: {e}"),
        )),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn too_large(size: usize, max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::RequestTooLarge,
        format!("the request body is {size} bytes; the limit is {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Body {
        Body::Bytes(v.to_string().into_bytes())
    }

    #[test]
    fn parses_what_routing_needs_and_keeps_the_rest() {
        let b = body(json!({
            "model": "auto", "stream": true, "temperature": 0.2, "x_custom": [1],
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"plan": "free", "channel": "web"}
        }));
        let req = parse_chat(&b, Some(r#"{"plan": "pro"}"#), 1000).unwrap();
        assert_eq!(req.model, "auto");
        assert!(req.stream);
        assert_eq!(req.message_count, 1);
        assert_eq!(req.metadata["plan"], "pro", "the header wins over the body");
        assert_eq!(req.metadata["channel"], "web");
        assert!(!req.body.contains_key("metadata"));
        assert_eq!(req.body["x_custom"], json!([1]));
    }

    #[test]
    fn bad_input_gets_a_stable_code() {
        let ok_messages = json!([{"role": "user", "content": "hi"}]);
        let table: Vec<(Body, Option<&str>, ErrorCode)> = vec![
            (
                Body::Bytes(b"{not json".to_vec()),
                None,
                ErrorCode::InvalidJson,
            ),
            (Body::Bytes(Vec::new()), None, ErrorCode::InvalidJson),
            (body(json!([1])), None, ErrorCode::InvalidRequest),
            (
                body(json!({"messages": ok_messages})),
                None,
                ErrorCode::InvalidRequest,
            ),
            (
                body(json!({"model": 3, "messages": ok_messages})),
                None,
                ErrorCode::InvalidRequest,
            ),
            (
                body(json!({"model": "auto", "messages": []})),
                None,
                ErrorCode::InvalidRequest,
            ),
            (
                body(json!({"model": "auto", "messages": [{"content": "x"}]})),
                None,
                ErrorCode::InvalidRequest,
            ),
            (
                body(json!({"model": "auto", "messages": ok_messages, "stream": "yes"})),
                None,
                ErrorCode::InvalidRequest,
            ),
            (
                body(json!({"model": "auto", "messages": ok_messages, "metadata": 1})),
                None,
                ErrorCode::InvalidMetadata,
            ),
            (
                body(json!({"model": "auto", "messages": ok_messages})),
                Some("{bad"),
                ErrorCode::InvalidMetadata,
            ),
            (
                body(json!({"model": "auto", "messages": ok_messages})),
                Some("[1]"),
                ErrorCode::InvalidMetadata,
            ),
            (
                Body::TooLarge { declared: 5000 },
                None,
                ErrorCode::RequestTooLarge,
            ),
            (
                Body::Bytes(vec![b' '; 1001]),
                None,
                ErrorCode::RequestTooLarge,
            ),
        ];
        for (b, header, want) in table {
            let got = parse_chat(&b, header, 1000).unwrap_err();
            assert_eq!(got.code, want, "{b:?} {header:?}: {}", got.message);
        }
        let huge = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_METADATA_HEADER_BYTES));
        let b = body(json!({"model": "auto", "messages": ok_messages}));
        assert_eq!(
            parse_chat(&b, Some(&huge), 1000).unwrap_err().code,
            ErrorCode::InvalidMetadata
        );
    }
}
