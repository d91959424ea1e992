//! Azure OpenAI: OpenAI's wire format at a deployment URL. The provider's `base_url` is the
//! resource endpoint (`https://<resource>.openai.azure.com`), the target's model id is the
//! deployment name, `api_version` is the provider's, and the key goes in the `api-key` header.

use super::openai_compatible::OpenAiCompatible;
use crate::chat::request::ChatRequest;
use crate::decide::plan::Attempt;
use crate::ports::{Secret, UpstreamRequest};
use crate::providers::api::ProviderApi;
use crate::providers::api::{path_segment, query_value};
use crate::rules::Provider;

/// Used when the provider names none.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// Azure OpenAI: OpenAI's answers and streams, at a deployment URL.
pub struct AzureOpenAi;

impl ProviderApi for AzureOpenAi {
    fn build_request(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> UpstreamRequest {
        // The body and the streaming options are OpenAI's; only the address and the key differ.
        let mut request = OpenAiCompatible.build_request(provider, attempt, req, None);
        request.url = deployment_url(provider, attempt, "chat/completions");
        if let Some(key) = key {
            request
                .headers
                .push(("api-key".into(), key.expose().to_string()));
        }
        request
    }

    /// The deployment's `embeddings` path, with OpenAI's body.
    fn build_embeddings(
        &self,
        provider: &Provider,
        attempt: &Attempt,
        req: &ChatRequest,
        key: Option<&Secret>,
    ) -> Result<UpstreamRequest, String> {
        let mut request = self.build_request(provider, attempt, req, key);
        request.url = deployment_url(provider, attempt, "embeddings");
        Ok(request)
    }
}

/// `<base_url>/openai/deployments/<deployment>/<path>?api-version=<version>`.
fn deployment_url(provider: &Provider, attempt: &Attempt, path: &str) -> String {
    let version = provider
        .api_version
        .as_deref()
        .unwrap_or(DEFAULT_API_VERSION);
    format!(
        "{}/openai/deployments/{}/{path}?api-version={}",
        provider.base_url,
        path_segment(&attempt.model_id),
        query_value(version)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fixtures;
    use crate::rules::provider::ProviderKind;
    use serde_json::{json, Value};

    #[test]
    fn deployment_url_version_and_key_header() {
        let provider = Provider {
            api_version: Some("2025-01-01-preview".into()),
            ..fixtures::provider(
                "azure",
                ProviderKind::AzureOpenAi,
                "https://acme.openai.azure.com",
                Some("AZURE_KEY"),
            )
        };
        let attempt = fixtures::attempt("gpt4o", "azure", "gpt-4o prod");
        let req = fixtures::chat(
            &json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "seed": 3}),
        );
        let out =
            AzureOpenAi.build_request(&provider, &attempt, &req, Some(&Secret::new("az-key")));
        assert_eq!(
            out.url,
            "https://acme.openai.azure.com/openai/deployments/gpt-4o%20prod/chat/completions?api-version=2025-01-01-preview"
        );
        assert!(out.headers.contains(&("api-key".into(), "az-key".into())));
        assert!(
            !out.headers.iter().any(|(k, _)| k == "authorization"),
            "Azure takes api-key, not a bearer token"
        );
        let sent: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(sent["seed"], 3);
    }
}
