//! Provider kinds' wire formats, one file per kind behind one trait (`api::ProviderApi`), chosen
//! here by the closed `ProviderKind` (one exhaustive match). `errors` normalises every kind's
//! failures into one closed set; `api` holds what the kinds share.

pub mod anthropic;
pub mod api;
pub mod azure_openai;
pub mod bedrock;
pub mod errors;
#[cfg(test)]
pub mod fixtures;
pub mod gemini;
pub mod openai_compatible;
pub mod sigv4;
pub mod workers_ai;

use crate::chat::request::ChatRequest;
use crate::decide::plan::Attempt;
use crate::error::ApiError;
use crate::ports::{Secret, UpstreamRequest};
use crate::rules::provider::ProviderKind;
use crate::rules::Provider;
use api::ProviderApi;
use errors::ErrorKind;
use serde_json::Value;

/// The wire format of a kind of provider.
pub fn api(kind: ProviderKind) -> &'static dyn ProviderApi {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            &openai_compatible::OpenAiCompatible
        }
        ProviderKind::Anthropic => &anthropic::Anthropic,
        ProviderKind::AzureOpenAi => &azure_openai::AzureOpenAi,
        ProviderKind::Gemini => &gemini::Gemini,
        ProviderKind::WorkersAi => &workers_ai::WorkersAi,
        ProviderKind::Bedrock => &bedrock::Bedrock,
    }
}

/// The provider request for one attempt, in the provider's wire format.
pub fn build_request(
    provider: &Provider,
    attempt: &Attempt,
    chat: &ChatRequest,
    key: Option<&Secret>,
) -> UpstreamRequest {
    api(provider.kind).build_request(provider, attempt, chat, key)
}

/// A provider's whole answer in OpenAI's shape, or the failure it really is.
pub fn answer_to_openai(
    provider: &Provider,
    answer: Value,
    id: &str,
    created: u64,
) -> Result<Value, (ApiError, ErrorKind)> {
    let translated = api(provider.kind).answer_to_openai(provider, &answer, id, created)?;
    Ok(translated.unwrap_or(answer))
}
