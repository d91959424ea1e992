//! The rules document exactly as operators write it: serde types with `deny_unknown_fields`, no
//! meaning attached yet. `validate.rs` turns them into the runtime types of `model.rs`.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Top-level fields, checked by hand so that an error in one section does not hide the others.
pub const TOP_LEVEL_FIELDS: [&str; 6] = [
    "version",
    "description",
    "providers",
    "models",
    "routes",
    "default",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: String,
    pub base_url: String,
    #[serde(default)]
    pub api_key_secret: Option<String>,
    /// Extra headers sent to this provider on every call (for quirks such as OpenRouter's referer).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub price_per_mtok: Option<RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    /// Kept as JSON: `condition.rs` parses it with paths in its errors.
    #[serde(default)]
    pub when: Option<serde_json::Value>,
    pub then: RawTarget,
}

/// Where a route sends a request: for now the name of a model of the document.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTarget {
    Model(String),
}
