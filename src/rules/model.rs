//! The validated rules: runtime types every other module reads. Built only by `validate.rs`, so
//! holding a `Rules` means every reference in it resolves and every regex compiled.

use crate::condition::Condition;
use crate::providers::ProviderKind;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Rules {
    pub version: u64,
    pub providers: BTreeMap<String, Provider>,
    pub models: BTreeMap<String, Model>,
    pub routes: Vec<Route>,
    pub default: Target,
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
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub provider: String,
    /// The provider's own model id.
    pub model: String,
    pub context_window: Option<u64>,
    pub price: Option<Price>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Model(String),
}

impl Rules {
    /// The model and its provider; both exist by construction.
    pub fn resolve(&self, model: &str) -> Option<(&Model, &Provider)> {
        let m = self.models.get(model)?;
        Some((m, self.providers.get(&m.provider)?))
    }
}
