//! Test fixtures the provider kinds' tests share: a provider, an attempt on it, and a parsed
//! chat request, with everything but what a test names left at its plain default.

use crate::chat::request::{parse_chat, ChatRequest};
use crate::decide::plan::Attempt;
use crate::http::Body;
use crate::rules::provider::ProviderKind;
use crate::rules::{builtin_retry, FallbackOn, Provider};
use serde_json::{Map, Value};

/// A provider of `kind` at `base_url`, its key in the secret `secret` (none for keyless kinds).
pub fn provider(name: &str, kind: ProviderKind, base_url: &str, secret: Option<&str>) -> Provider {
    Provider {
        name: name.into(),
        kind,
        base_url: base_url.into(),
        api_key_secret: secret.map(str::to_string),
        headers: Vec::new(),
        api_version: None,
        allow_byok: false,
        region: None,
    }
}

/// An attempt at `target` on `provider` with its model id, no overrides, the built-in retry.
pub fn attempt(target: &str, provider: &str, model_id: &str) -> Attempt {
    Attempt {
        target: target.into(),
        provider: provider.into(),
        model_id: model_id.into(),
        overrides: Map::new(),
        retry: builtin_retry(),
        timeout_ms: 1000,
        fallback_on: FallbackOn::Default,
        why: "test".into(),
    }
}

/// A chat completions body as the front door parses it (bodies up to 1 MiB).
pub fn chat(body: &Value) -> ChatRequest {
    parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20)
        .expect("a valid chat request")
}
