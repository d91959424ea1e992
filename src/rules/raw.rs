//! The rules document exactly as operators write it: serde shapes with `deny_unknown_fields`, no
//! meaning attached yet. They are the single source of truth for field names: `validate.rs` and
//! `targets.rs` read them, and the published JSON Schema (`docs/rules.schema.json`) is generated
//! from them. Conditions and nested targets stay JSON (`ConditionValue`, `TargetValue`) so their
//! parsers can name the path of every error.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The whole document. Parsed section by section (so one bad section does not hide the errors of
/// another); this type names the sections and generates the schema.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "taskrouter rules document",
    description = "Routing rules for taskrouter: providers, models, tasks, routes and defaults (docs/rules.md)."
)]
pub struct RawRules {
    /// Shown in `x-router-rules-version` and analytics.
    pub version: u64,
    pub description: Option<String>,
    pub providers: BTreeMap<String, RawProvider>,
    pub models: BTreeMap<String, RawModel>,
    #[serde(default)]
    pub tasks: BTreeMap<String, RawTask>,
    /// Tried in order for `model: "auto"`; the first whose `when` holds wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Where requests go when no route matches.
    pub default: TargetValue,
    pub defaults: Option<RawDefaults>,
    /// The built-in task model (docs/rules.md#the-built-in-classifier).
    pub classifier: Option<RawClassifier>,
}

/// Turns on the task model bundled in the Worker: it labels every `auto` request, its label and
/// probability become the facts `model_task` and `model_score`, and when no task of the rules
/// scores, its label becomes the request's `task` if the probability reaches `min_score`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClassifier {
    /// `builtin` (bundled in the Worker), or `kv:<key>`: a model trained with `taskrouter train`,
    /// stored base64-encoded under that key of the rules' KV namespace.
    #[serde(default = "builtin_model")]
    pub model: String,
    /// Probability from which the model's label becomes the task (default 0.5).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// Ask a cheap model of the rules when the built-in model is unsure.
    #[serde(default)]
    pub cascade: Option<RawCascade>,
}

/// When the built-in model's top probability is below `below` and no task of the rules scored,
/// `model` is asked to pick one label (a constrained JSON answer); its answer is cached per prompt
/// in the isolate. If the call fails, the request is routed as if there were no cascade.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCascade {
    /// A model of the rules.
    pub model: String,
    /// Ask when the built-in model's top probability is below this (default: `min_score`).
    #[serde(default)]
    pub below: Option<f64>,
    /// Time allowed for the call (default 3000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn builtin_model() -> String {
    "builtin".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// `openai`, `openai_compatible`, `anthropic`, `azure_openai`, `gemini`, `workers_ai` or `bedrock`.
    pub kind: String,
    /// https, or plain http for loopback hosts only; an ASCII host (an internationalised name in
    /// its punycode form, `xn--...`). Required, except for `workers_ai`, which is
    /// reached through the Worker's `AI` binding and has none.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the Worker secret holding the key.
    #[serde(default)]
    pub api_key_secret: Option<String>,
    /// Extra headers sent to this provider on every call.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Azure OpenAI's `api-version` (default 2024-10-21).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Let callers bring their own key for this provider (docs/operations.md).
    #[serde(default)]
    pub allow_byok: bool,
    /// Bedrock only: the AWS region requests are signed for, when the `base_url` does not show it
    /// (`https://bedrock-runtime.<region>.amazonaws.com` does).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub price_per_mtok: Option<RawPrice>,
    /// Makes this an embedding model, served by `POST /v1/embeddings` only (docs/rules.md).
    #[serde(default)]
    pub embeddings: Option<RawEmbeddings>,
}

/// What an embedding model returns, and where its requests go when it fails.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmbeddings {
    /// Length of the vectors it returns.
    pub dimensions: u32,
    /// Embedding models tried in order when this one fails; each must return vectors of the same
    /// `dimensions` (the same model at another provider, so its vectors are comparable).
    #[serde(default)]
    pub fallback: Vec<String>,
}

/// US dollars per million tokens.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// How a task is recognised; see docs/rules.md for scoring.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub description: Option<String>,
    /// Phrases, matched case-insensitively.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Rust `regex` patterns.
    #[serde(default)]
    pub regex: Vec<String>,
    /// A condition over the request facts.
    pub when: Option<ConditionValue>,
    /// Breaks ties between equal scores: higher first.
    #[serde(default)]
    pub priority: i32,
    /// Which text keywords and regexes read: `last_user` (default), `system` or `conversation`.
    pub scope: Option<RawScope>,
    /// Keywords match whole words only (default true).
    pub whole_words: Option<bool>,
    /// Least score for the task to be chosen (default 1).
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawScope {
    LastUser,
    System,
    Conversation,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    /// Omitted: always.
    #[serde(default)]
    pub when: Option<ConditionValue>,
    pub then: TargetValue,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub retry: Option<RawRetry>,
    /// Per attempt.
    pub timeout_ms: Option<u64>,
    /// For the whole request, all attempts and waits included.
    pub deadline_ms: Option<u64>,
    /// Provider calls one request may make (the Workers Free plan allows 50 subrequests).
    pub max_provider_calls: Option<u32>,
    pub cooldown: Option<RawCooldown>,
}

/// A target that keeps failing is skipped for a while within each isolate (a circuit breaker).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCooldown {
    /// Consecutive transient failures that open the breaker (default 5; 0 turns it off).
    pub after_failures: Option<u32>,
    /// How long the target is skipped, default 30000; then one probe request is let through.
    pub cooldown_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Retries after the first try, at most 5.
    pub attempts: Option<u32>,
    pub on_status: Option<Vec<u16>>,
    pub backoff_ms: Option<u64>,
    pub respect_retry_after: Option<bool>,
}

/// Fields every target object may carry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModelTarget {
    pub model: String,
    #[serde(rename = "override")]
    pub overrides: Option<Map<String, Value>>,
    pub retry: Option<RawRetry>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub fallback: Vec<TargetValue>,
    /// Only these statuses move on to the next target (default: any failure).
    pub on_status: Option<Vec<u16>>,
    #[serde(rename = "override")]
    pub overrides: Option<Map<String, Value>>,
    pub retry: Option<RawRetry>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoadBalance {
    pub loadbalance: Vec<RawWeighted>,
    #[serde(rename = "override")]
    pub overrides: Option<Map<String, Value>>,
    pub retry: Option<RawRetry>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeighted {
    pub target: TargetValue,
    /// Positive; shares are weight / sum of weights.
    pub weight: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConditional {
    pub conditional: Vec<RawBranch>,
    pub default: TargetValue,
    #[serde(rename = "override")]
    pub overrides: Option<Map<String, Value>>,
    pub retry: Option<RawRetry>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub when: ConditionValue,
    pub then: TargetValue,
}

/// A Portkey gateway config (or one of its targets), accepted as a target.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortkeyNode {
    pub strategy: Option<PortkeyStrategy>,
    pub targets: Option<Vec<PortkeyNode>>,
    /// Names a provider of this document.
    pub provider: Option<String>,
    /// Names a provider of this document.
    pub virtual_key: Option<String>,
    pub name: Option<String>,
    pub weight: Option<f64>,
    pub retry: Option<PortkeyRetry>,
    pub request_timeout: Option<u64>,
    pub override_params: Option<Map<String, Value>>,
    /// Refused: keys belong in Worker secrets.
    pub api_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortkeyStrategy {
    /// `single`, `fallback`, `loadbalance` or `conditional`.
    pub mode: String,
    pub on_status_codes: Option<Vec<u16>>,
    pub conditions: Option<Vec<PortkeyCondition>>,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortkeyCondition {
    pub query: ConditionValue,
    pub then: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortkeyRetry {
    pub attempts: Option<u32>,
    /// Older spelling of `attempts`.
    pub count: Option<u32>,
    pub on_status_codes: Option<Vec<u16>>,
    pub use_retry_after_header: Option<bool>,
    pub use_retry_after_headers: Option<bool>,
}

/// A condition, kept as JSON for `rules::condition`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct ConditionValue(pub Value);

/// A target, kept as JSON for `targets.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct TargetValue(pub Value);

fn schema(v: Value) -> Schema {
    match v {
        Value::Object(m) => Schema::from(m),
        _ => Schema::default(),
    }
}

impl JsonSchema for ConditionValue {
    fn schema_name() -> Cow<'static, str> {
        "Condition".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(json!({
            "type": "object",
            "description": "MongoDB-style condition over request facts: {\"path\": value} or {\"path\": {\"$op\": operand}}, with $and/$or/$not. Operators: $eq $ne $in $nin $gt $gte $lt $lte $regex $exists $contains."
        }))
    }
}

impl JsonSchema for TargetValue {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let any_of = vec![
            json!({"type": "string", "description": "A model name of this document."}),
            generator.subschema_for::<RawModelTarget>().to_value(),
            generator.subschema_for::<RawFallback>().to_value(),
            generator.subschema_for::<RawLoadBalance>().to_value(),
            generator.subschema_for::<RawConditional>().to_value(),
            generator.subschema_for::<PortkeyNode>().to_value(),
        ];
        schema(json!({"anyOf": any_of}))
    }
}

/// The JSON Schema of the rules document, pretty-printed.
pub fn rules_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RawRules>();
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
