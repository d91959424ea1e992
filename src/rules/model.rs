//! The validated rules: runtime types every other module reads. Built only by `validate.rs`, so
//! holding a `Rules` means every reference in it resolves, every regex compiled, and every
//! keyword automaton is built (once per rules version, cached with the rules in the isolate).

use crate::rules::condition::Condition;
use crate::rules::provider::ProviderKind;
use crate::rules::tasks::Classifier;
use crate::task_model::TaskModel;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Rules {
    pub version: u64,
    pub providers: BTreeMap<String, Provider>,
    /// Includes models a Portkey target named only by provider and model id (`provider/model`).
    pub models: BTreeMap<String, Model>,
    pub classifier: Classifier,
    /// The built-in task model, when the rules turn it on.
    pub task_model: Option<TaskModelConfig>,
    pub routes: Vec<Route>,
    pub default: Target,
    pub defaults: Defaults,
}

#[derive(Debug, Clone)]
pub struct TaskModelConfig {
    /// The bundled model, replaced by the KV one (`kv_key`) when the rules are loaded from KV.
    pub model: Arc<TaskModel>,
    /// `classifier.model: "kv:<key>"`: the KV key holding the model (base64 text).
    pub kv_key: Option<String>,
    /// Probability from which the model's label becomes the request's task.
    pub min_score: f64,
    pub cascade: Option<Cascade>,
}

/// The cheap model asked when the built-in model is unsure.
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    /// A model of the rules.
    pub model: String,
    /// Asked when the built-in model's top probability is below this.
    pub below: f64,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    /// Name of the Worker secret holding the key; `None` for keyless local servers.
    pub api_key_secret: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The API version some providers (Azure OpenAI) put in every request.
    pub api_version: Option<String>,
    /// Callers may bring their own key for this provider.
    pub allow_byok: bool,
    /// The AWS region requests are signed for (Bedrock; read from the URL when not given).
    pub region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub provider: String,
    /// The provider's own model id.
    pub model: String,
    pub context_window: Option<u64>,
    pub price: Option<Price>,
    /// Set for an embedding model: it serves `POST /v1/embeddings` and never a chat request.
    pub embeddings: Option<Embeddings>,
}

/// An embedding model's vector length and its fallback models (validated: embedding models of
/// the same length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embeddings {
    pub dimensions: u32,
    pub fallback: Vec<String>,
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub when: Condition,
    pub then: Target,
}

/// Retry and timeout for targets that do not set their own, and the request's overall limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    pub deadline_ms: u64,
    pub max_provider_calls: u32,
    pub cooldown: Cooldown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cooldown {
    /// 0: no circuit breaker.
    pub after_failures: u32,
    pub cooldown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first try (0: no retry), as in Portkey.
    pub attempts: u32,
    /// Statuses that are retried.
    pub on_status: Vec<u16>,
    /// First backoff; doubles each retry, with jitter.
    pub backoff_ms: u64,
    /// Use the provider's `retry-after` / `retry-after-ms` when present.
    pub respect_retry_after: bool,
}

/// What a target node adds for everything beneath it; the innermost setting wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub retry: Option<RetryPolicy>,
    pub timeout_ms: Option<u64>,
    /// Request parameters to set (`max_tokens`, `temperature`, `model` for the provider's id, ...).
    pub overrides: Map<String, Value>,
}

/// The routing tree.
#[derive(Debug, Clone)]
pub enum Target {
    /// One model of the document.
    Model { model: String, settings: Settings },
    /// Each in order until one succeeds, moving on for the failures `on` names.
    Fallback {
        targets: Vec<Target>,
        on: FallbackOn,
        settings: Settings,
    },
    /// One of them, drawn by weight.
    LoadBalance {
        choices: Vec<(Target, f64)>,
        settings: Settings,
    },
    /// The first branch whose condition holds, else the default.
    Conditional {
        branches: Vec<(Condition, Target)>,
        default: Box<Target>,
        settings: Settings,
    },
}

/// Which failures move a fallback on to its next target. Timeouts and network errors always do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackOn {
    /// Any failure except a request the provider rejected as invalid (another would reject it too).
    Default,
    /// Any non-2xx answer (Portkey's fallback without `on_status_codes`).
    AnyFailure,
    /// Only these statuses.
    Statuses(Vec<u16>),
}

impl Rules {
    /// The models chat requests may use (all but the embedding models).
    pub fn chat_models(&self) -> impl Iterator<Item = &Model> {
        self.models.values().filter(|m| m.embeddings.is_none())
    }

    /// The embedding models.
    pub fn embedding_models(&self) -> impl Iterator<Item = &Model> {
        self.models.values().filter(|m| m.embeddings.is_some())
    }

    /// The model and its provider; both exist by construction.
    pub fn resolve(&self, model: &str) -> Option<(&Model, &Provider)> {
        let m = self.models.get(model)?;
        Some((m, self.providers.get(&m.provider)?))
    }
}
