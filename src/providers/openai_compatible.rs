//! OpenAI's chat-completions wire format, spoken by OpenAI itself and every compatible API: the
//! request is the caller's body with the provider's model id, sent to `<base_url>/chat/completions`
//! with a bearer key and the provider's configured extra headers. Unknown fields pass through.

use crate::chat::request::ChatRequest;
use crate::decide::plan::Attempt;
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::body_with_overrides;
use crate::providers::api::ProviderApi;
use crate::rules::provider::ProviderKind;
use crate::rules::Provider;
use serde_json::{Map, Value};

/// OpenAI and every API that speaks its chat-completions format: answers and streams are
/// already in the router's shape.
pub struct OpenAiCompatible;

impl ProviderApi for OpenAiCompatible {
    /// The provider request for one attempt: the caller's body, the attempt's overrides, its model id.
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest {
        let mut body = body_with_overrides(req, attempt);
        body.insert("model".into(), Value::String(attempt.model_id.clone()));
        if req.stream {
            // Ask for the final usage event (for cost); the stream watcher removes it again when the
            // client did not ask for it.
            let mut options = match body.remove("stream_options") {
                Some(Value::Object(o)) => o,
                _ => serde_json::Map::new(),
            };
            options.insert("include_usage".into(), Value::Bool(true));
            body.insert("stream_options".into(), Value::Object(options));
        }
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if req.stream {
            headers.push(("accept".into(), "text/event-stream".into()));
        }
        if let Some(key) = key {
            headers.push(("authorization".into(), format!("Bearer {}", key.expose())));
        }
        headers.extend(provider.headers.iter().cloned());
        UpstreamRequest {
            url: format!("{}/chat/completions", provider.base_url),
            headers,
            body: Value::Object(body).to_string().into_bytes(),
        }
    }

    /// `<base_url>/embeddings` with the caller's body and the attempt's model id.
    fn build_embeddings(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> Result<UpstreamRequest, String> {
        let mut request = self.build_request(provider, attempt, req, key);
        request.url = format!("{}/embeddings", provider.base_url);
        Ok(request)
    }
}

/// Whether a provider takes Responses API requests as they are: OpenAI's own API does.
pub fn speaks_responses(provider: &Provider) -> bool {
    match provider.kind {
        ProviderKind::OpenAi => true,
        ProviderKind::OpenAiCompatible
        | ProviderKind::Anthropic
        | ProviderKind::AzureOpenAi
        | ProviderKind::Gemini
        | ProviderKind::WorkersAi
        | ProviderKind::Bedrock => false,
    }
}

/// A Responses API request passed through: `<base_url>/responses`, the caller's request with the
/// attempt's model id and overrides (`max_tokens` / `max_completion_tokens` as
/// `max_output_tokens`, the rest under their own names).
pub fn responses_request(
    provider: &Provider,
    attempt: &Attempt,
    original: &Map<String, Value>,
    stream: bool,
    key: Option<&Secret>,
) -> UpstreamRequest {
    let mut body = original.clone();
    for (k, v) in &attempt.overrides {
        let name = match k.as_str() {
            "max_tokens" | "max_completion_tokens" => "max_output_tokens",
            other => other,
        };
        body.insert(name.to_string(), v.clone());
    }
    body.insert("model".into(), Value::String(attempt.model_id.clone()));
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if stream {
        headers.push(("accept".into(), "text/event-stream".into()));
    }
    if let Some(key) = key {
        headers.push(("authorization".into(), format!("Bearer {}", key.expose())));
    }
    headers.extend(provider.headers.iter().cloned());
    UpstreamRequest {
        url: format!("{}/responses", provider.base_url),
        headers,
        body: Value::Object(body).to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::request::parse_chat;
    use crate::http::Body;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;
    use serde_json::json;

    #[test]
    fn forwards_the_body_with_the_provider_model() {
        let provider = Provider {
            headers: vec![("x-extra".into(), "1".into())],
            ..fixtures::provider(
                "groq",
                ProviderKind::OpenAiCompatible,
                "https://api.groq.com/openai/v1",
                Some("GROQ_API_KEY"),
            )
        };
        let attempt = Attempt {
            overrides: json!({"max_tokens": 64, "seed": 1})
                .as_object()
                .unwrap()
                .clone(),
            ..fixtures::attempt("fast", "groq", "llama-3.1-8b-instant")
        };
        let body = json!({"model": "auto", "stream": true, "seed": 7, "messages": [{"role": "user", "content": "hi"}],
                          "metadata": {"plan": "pro"}});
        let req = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 10_000).unwrap();
        let out =
            OpenAiCompatible.build_request(&provider, &attempt, &req, Some(&Secret::new("gsk-1")));
        assert_eq!(out.url, "https://api.groq.com/openai/v1/chat/completions");
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            sent,
            json!({"model": "llama-3.1-8b-instant", "stream": true, "seed": 1, "max_tokens": 64,
                   "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "hi"}]}),
            "overrides win over the caller's values"
        );
        assert!(out
            .headers
            .contains(&("authorization".into(), "Bearer gsk-1".into())));
        assert!(out
            .headers
            .contains(&("accept".into(), "text/event-stream".into())));
        assert!(out.headers.contains(&("x-extra".into(), "1".into())));
        let keyless = OpenAiCompatible.build_request(&provider, &attempt, &req, None);
        assert!(!keyless.headers.iter().any(|(k, _)| k == "authorization"));
    }
}
