//! OpenAI's chat-completions wire format, spoken by OpenAI itself and every compatible API: the
//! request is the caller's body with the provider's model id, sent to `<base_url>/chat/completions`
//! with a bearer key and the provider's configured extra headers. Unknown fields pass through.

use crate::ports::{Secret, UpstreamRequest};
use crate::request::ChatRequest;
use crate::rules::{Model, Provider};
use serde_json::Value;

pub fn build_request(
    provider: &Provider,
    model: &Model,
    req: &ChatRequest,
    key: Option<&Secret>,
) -> UpstreamRequest {
    let mut body = req.body.clone();
    body.insert("model".into(), Value::String(model.model.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;
    use crate::providers::ProviderKind;
    use crate::request::parse_chat;
    use serde_json::json;

    #[test]
    fn forwards_the_body_with_the_provider_model() {
        let provider = Provider {
            name: "groq".into(),
            kind: ProviderKind::OpenAiCompatible,
            base_url: "https://api.groq.com/openai/v1".into(),
            api_key_secret: Some("GROQ_API_KEY".into()),
            headers: vec![("x-extra".into(), "1".into())],
        };
        let model = Model {
            name: "fast".into(),
            provider: "groq".into(),
            model: "llama-3.1-8b-instant".into(),
            context_window: None,
            price: None,
        };
        let body = json!({"model": "auto", "stream": true, "seed": 7, "messages": [{"role": "user", "content": "hi"}],
                          "metadata": {"plan": "pro"}});
        let req = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 10_000).unwrap();
        let out = build_request(&provider, &model, &req, Some(&Secret::new("gsk-1")));
        assert_eq!(out.url, "https://api.groq.com/openai/v1/chat/completions");
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            sent,
            json!({"model": "llama-3.1-8b-instant", "stream": true, "seed": 7,
                   "messages": [{"role": "user", "content": "hi"}]})
        );
        assert!(out
            .headers
            .contains(&("authorization".into(), "Bearer gsk-1".into())));
        assert!(out
            .headers
            .contains(&("accept".into(), "text/event-stream".into())));
        assert!(out.headers.contains(&("x-extra".into(), "1".into())));
        let keyless = build_request(&provider, &model, &req, None);
        assert!(!keyless.headers.iter().any(|(k, _)| k == "authorization"));
    }
}
