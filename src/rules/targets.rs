//! Parsing targets: a model name, the native shapes (`model`, `fallback`, `loadbalance`,
//! `conditional`), or a Portkey gateway config, into the runtime `Target` tree. Every error names
//! its path; nesting is bounded.
//!
//! Portkey mapping (docs/portkey.md): `provider`/`virtual_key` name a provider of this document and
//! `override_params.model` the provider's model id (or `"@provider/model"`); a pair that no model
//! entry declares becomes a model named `provider/model` (no price, no context window).

use super::errors::{typed, Errors};
use super::model::{FallbackOn, Model, Provider, RetryPolicy, Settings, Target};
use super::raw::{
    PortkeyNode, PortkeyRetry, RawConditional, RawFallback, RawLoadBalance, RawModelTarget,
    RawRetry,
};
use crate::rules::condition::Condition;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Deepest nesting of targets accepted.
pub const MAX_TARGET_DEPTH: usize = 8;
/// Most retries per target (as Portkey).
pub const MAX_RETRY_ATTEMPTS: u32 = 5;
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Request fields a target may not override: they are the request itself.
const FIXED_PARAMS: [&str; 4] = ["messages", "stream", "metadata", "stream_options"];

pub(super) struct TargetParser<'a> {
    pub providers: &'a BTreeMap<String, Provider>,
    pub models: &'a mut BTreeMap<String, Model>,
    pub errors: &'a mut Errors,
    pub default_retry: &'a RetryPolicy,
}

impl TargetParser<'_> {
    pub fn parse(&mut self, v: &Value, at: &str) -> Option<Target> {
        self.node(v, at, 0)
    }

    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Option<Target> {
        if depth > MAX_TARGET_DEPTH {
            self.errors.add(
                at,
                format!("targets nest deeper than {MAX_TARGET_DEPTH} levels"),
            );
            return None;
        }
        let obj = match v {
            Value::String(name) => return self.model_ref(name, Settings::default(), at),
            Value::Object(obj) => obj,
            _ => {
                self.errors.add(at, "a target is a model name or an object");
                return None;
            }
        };
        let has = |k: &str| obj.contains_key(k);
        if [
            "strategy",
            "targets",
            "provider",
            "virtual_key",
            "override_params",
        ]
        .iter()
        .any(|k| has(k))
        {
            let node: PortkeyNode = typed(v, at, self.errors)?;
            return self.portkey(node, at, depth);
        }
        if has("model") {
            let t: RawModelTarget = typed(v, at, self.errors)?;
            let settings = self.settings(t.overrides, t.retry, t.timeout_ms, at);
            return self.model_ref(&t.model, settings, &format!("{at}.model"));
        }
        if has("fallback") {
            let t: RawFallback = typed(v, at, self.errors)?;
            let settings = self.settings(t.overrides, t.retry, t.timeout_ms, at);
            let on = match t.on_status {
                Some(codes) => {
                    FallbackOn::Statuses(self.statuses(codes, &format!("{at}.on_status")))
                }
                None => FallbackOn::Default,
            };
            let targets = self.list(&t.fallback, &format!("{at}.fallback"), depth)?;
            return Some(Target::Fallback {
                targets,
                on,
                settings,
            });
        }
        if has("loadbalance") {
            let t: RawLoadBalance = typed(v, at, self.errors)?;
            let settings = self.settings(t.overrides, t.retry, t.timeout_ms, at);
            if t.loadbalance.is_empty() {
                self.errors
                    .add(format!("{at}.loadbalance"), "must list at least one target");
                return None;
            }
            let mut choices = Vec::new();
            let mut ok = true;
            for (i, w) in t.loadbalance.iter().enumerate() {
                let here = format!("{at}.loadbalance[{i}]");
                ok &= self.weight(w.weight, &format!("{here}.weight"));
                match self.node(&w.target.0, &format!("{here}.target"), depth + 1) {
                    Some(target) => choices.push((target, w.weight)),
                    None => ok = false,
                }
            }
            return ok.then_some(Target::LoadBalance { choices, settings });
        }
        if has("conditional") {
            let t: RawConditional = typed(v, at, self.errors)?;
            let settings = self.settings(t.overrides, t.retry, t.timeout_ms, at);
            if t.conditional.is_empty() {
                self.errors
                    .add(format!("{at}.conditional"), "must list at least one branch");
            }
            let mut branches = Vec::new();
            for (i, b) in t.conditional.iter().enumerate() {
                let here = format!("{at}.conditional[{i}]");
                let when = self.condition(&b.when.0, &format!("{here}.when"));
                let then = self.node(&b.then.0, &format!("{here}.then"), depth + 1);
                if let (Some(w), Some(t)) = (when, then) {
                    branches.push((w, t));
                }
            }
            let default = self.node(&t.default.0, &format!("{at}.default"), depth + 1)?;
            return (branches.len() == t.conditional.len() && !branches.is_empty()).then(|| {
                Target::Conditional {
                    branches,
                    default: Box::new(default),
                    settings,
                }
            });
        }
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        self.errors.add(
            at,
            format!(
                "not a target (keys: {}); expected a model name, an object with model, fallback, loadbalance or conditional, or a Portkey config",
                keys.join(", ")
            ),
        );
        None
    }

    fn list(
        &mut self,
        items: &[super::raw::TargetValue],
        at: &str,
        depth: usize,
    ) -> Option<Vec<Target>> {
        if items.is_empty() {
            self.errors.add(at, "must list at least one target");
            return None;
        }
        let parsed: Vec<Option<Target>> = items
            .iter()
            .enumerate()
            .map(|(i, t)| self.node(&t.0, &format!("{at}[{i}]"), depth + 1))
            .collect();
        parsed.into_iter().collect()
    }

    fn model_ref(&mut self, name: &str, settings: Settings, at: &str) -> Option<Target> {
        if self
            .models
            .get(name)
            .is_some_and(|m| m.embeddings.is_some())
        {
            self.errors.add(
                at,
                format!("\"{name}\" is an embedding model: it serves /v1/embeddings, not chat"),
            );
            None
        } else if self.models.contains_key(name) {
            Some(Target::Model {
                model: name.to_string(),
                settings,
            })
        } else {
            self.errors.add(at, format!("unknown model \"{name}\""));
            None
        }
    }

    fn condition(&mut self, v: &Value, at: &str) -> Option<Condition> {
        match Condition::parse(v, at) {
            Ok(c) => Some(c),
            Err(list) => {
                for e in list {
                    self.errors.add(e.path, e.message);
                }
                None
            }
        }
    }

    fn weight(&mut self, w: f64, at: &str) -> bool {
        let ok = w.is_finite() && w > 0.0;
        if !ok {
            self.errors.add(at, "weights must be positive numbers");
        }
        ok
    }

    fn statuses(&mut self, codes: Vec<u16>, at: &str) -> Vec<u16> {
        if codes.is_empty() {
            self.errors.add(
                at,
                "must list at least one status (omit it for the default)",
            );
        }
        for c in &codes {
            if !(100..=599).contains(c) {
                self.errors.add(at, format!("{c} is not an HTTP status"));
            }
        }
        codes
    }

    fn settings(
        &mut self,
        overrides: Option<Map<String, Value>>,
        retry: Option<RawRetry>,
        timeout_ms: Option<u64>,
        at: &str,
    ) -> Settings {
        let overrides = overrides.unwrap_or_default();
        for (k, v) in &overrides {
            if FIXED_PARAMS.contains(&k.as_str()) {
                self.errors.add(
                    format!("{at}.override.{k}"),
                    "cannot be overridden: it is the request itself",
                );
            }
            if k == "model" && v.as_str().is_none_or(str::is_empty) {
                self.errors.add(
                    format!("{at}.override.model"),
                    "must be the provider's model id (a string)",
                );
            }
        }
        if let Some(t) = timeout_ms {
            self.timeout(t, &format!("{at}.timeout_ms"));
        }
        Settings {
            retry: retry.map(|r| self.retry(r, &format!("{at}.retry"))),
            timeout_ms,
            overrides,
        }
    }

    fn timeout(&mut self, t: u64, at: &str) {
        if t == 0 || t > MAX_TIMEOUT_MS {
            self.errors
                .add(at, format!("must be between 1 and {MAX_TIMEOUT_MS} ms"));
        }
    }

    /// A `retry` object replaces the inherited policy; fields it omits take the document defaults.
    pub fn retry(&mut self, r: RawRetry, at: &str) -> RetryPolicy {
        let base = self.default_retry.clone();
        let attempts = r.attempts.unwrap_or(base.attempts);
        if attempts > MAX_RETRY_ATTEMPTS {
            self.errors.add(
                format!("{at}.attempts"),
                format!("at most {MAX_RETRY_ATTEMPTS} retries"),
            );
        }
        let on_status = match r.on_status {
            Some(codes) => self.statuses(codes, &format!("{at}.on_status")),
            None => base.on_status,
        };
        let backoff_ms = r.backoff_ms.unwrap_or(base.backoff_ms);
        if backoff_ms > 60_000 {
            self.errors
                .add(format!("{at}.backoff_ms"), "at most 60000 ms");
        }
        RetryPolicy {
            attempts,
            on_status,
            backoff_ms,
            respect_retry_after: r.respect_retry_after.unwrap_or(base.respect_retry_after),
        }
    }

    fn portkey_retry(&mut self, r: PortkeyRetry, at: &str) -> RetryPolicy {
        if r.attempts.is_some() && r.count.is_some() {
            self.errors
                .add(at, "set attempts or its older spelling count, not both");
        }
        let respect = r.use_retry_after_headers.or(r.use_retry_after_header);
        self.retry(
            RawRetry {
                attempts: r.attempts.or(r.count),
                on_status: r.on_status_codes,
                backoff_ms: None,
                // Portkey waits by exponential backoff unless told to use the headers.
                respect_retry_after: Some(respect.unwrap_or(false)),
            },
            at,
        )
    }

    fn portkey(&mut self, node: PortkeyNode, at: &str, depth: usize) -> Option<Target> {
        if depth > MAX_TARGET_DEPTH {
            self.errors.add(
                at,
                format!("targets nest deeper than {MAX_TARGET_DEPTH} levels"),
            );
            return None;
        }
        if node.api_key.is_some() {
            self.errors.add(
                format!("{at}.api_key"),
                "keys are never put in rules: name a Worker secret in the provider's api_key_secret",
            );
        }
        if let Some(t) = node.request_timeout {
            self.timeout(t, &format!("{at}.request_timeout"));
        }
        let retry = node
            .retry
            .map(|r| self.portkey_retry(r, &format!("{at}.retry")));
        let mut overrides = node.override_params.unwrap_or_default();
        match (node.strategy, node.targets) {
            (Some(strategy), Some(targets)) => {
                if node.provider.is_some() || node.virtual_key.is_some() {
                    self.errors.add(at, "a node with a strategy routes to its targets; provider/virtual_key belong on them");
                }
                let settings = Settings {
                    retry,
                    timeout_ms: node.request_timeout,
                    overrides,
                };
                self.portkey_strategy(strategy, targets, settings, at, depth)
            }
            (Some(_), None) => {
                self.errors
                    .add(format!("{at}.targets"), "a strategy needs targets");
                None
            }
            (None, Some(_)) => {
                self.errors.add(
                    format!("{at}.strategy"),
                    "targets need a strategy (mode single, fallback, loadbalance or conditional)",
                );
                None
            }
            (None, None) => {
                let model_id = overrides.remove("model");
                let settings = Settings {
                    retry,
                    timeout_ms: node.request_timeout,
                    overrides,
                };
                let key = self.portkey_model(node.provider.or(node.virtual_key), model_id, at)?;
                Some(Target::Model {
                    model: key,
                    settings,
                })
            }
        }
    }

    fn portkey_strategy(
        &mut self,
        strategy: super::raw::PortkeyStrategy,
        targets: Vec<PortkeyNode>,
        settings: Settings,
        at: &str,
        depth: usize,
    ) -> Option<Target> {
        let mode_at = format!("{at}.strategy.mode");
        if targets.is_empty() {
            self.errors
                .add(format!("{at}.targets"), "must list at least one target");
            return None;
        }
        let names: Vec<Option<String>> = targets.iter().map(|t| t.name.clone()).collect();
        let weights: Vec<f64> = targets.iter().map(|t| t.weight.unwrap_or(1.0)).collect();
        let mut parsed = Vec::new();
        for (i, t) in targets.into_iter().enumerate() {
            parsed.push(self.portkey(t, &format!("{at}.targets[{i}]"), depth + 1));
        }
        let all: Option<Vec<Target>> = parsed.into_iter().collect();
        let targets = all?;
        match strategy.mode.as_str() {
            "single" => targets.into_iter().next().map(|t| wrap(t, settings)),
            // Portkey falls back on any non-2xx unless on_status_codes says otherwise.
            "fallback" => Some(Target::Fallback {
                on: match strategy.on_status_codes {
                    Some(codes) => FallbackOn::Statuses(
                        self.statuses(codes, &format!("{at}.strategy.on_status_codes")),
                    ),
                    None => FallbackOn::AnyFailure,
                },
                targets,
                settings,
            }),
            "loadbalance" => {
                let mut ok = true;
                for (i, w) in weights.iter().enumerate() {
                    ok &= self.weight(*w, &format!("{at}.targets[{i}].weight"));
                }
                ok.then(|| Target::LoadBalance {
                    choices: targets.into_iter().zip(weights).collect(),
                    settings,
                })
            }
            "conditional" => {
                let index: HashMap<String, usize> = names
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| n.clone().map(|n| (n, i)))
                    .collect();
                let lookup = |name: &str, here: String, errors: &mut Errors| match index.get(name) {
                    Some(i) => targets.get(*i).cloned(),
                    None => {
                        errors.add(here, format!("no target named \"{name}\""));
                        None
                    }
                };
                let conditions = strategy.conditions.unwrap_or_default();
                if conditions.is_empty() {
                    self.errors.add(
                        format!("{at}.strategy.conditions"),
                        "must list at least one condition",
                    );
                }
                let mut branches = Vec::new();
                for (i, c) in conditions.iter().enumerate() {
                    let here = format!("{at}.strategy.conditions[{i}]");
                    let when = self.condition(&c.query.0, &format!("{here}.query"));
                    let then = lookup(&c.then, format!("{here}.then"), self.errors);
                    if let (Some(w), Some(t)) = (when, then) {
                        branches.push((w, t));
                    }
                }
                let default = match &strategy.default {
                    Some(name) => lookup(name, format!("{at}.strategy.default"), self.errors),
                    None => {
                        self.errors.add(
                            format!("{at}.strategy.default"),
                            "a conditional strategy needs a default",
                        );
                        None
                    }
                }?;
                (branches.len() == conditions.len() && !branches.is_empty()).then(|| {
                    Target::Conditional {
                        branches,
                        default: Box::new(default),
                        settings,
                    }
                })
            }
            other => {
                self.errors.add(
                    mode_at,
                    format!(
                        "unknown mode \"{other}\" (single, fallback, loadbalance, conditional)"
                    ),
                );
                None
            }
        }
    }

    /// The model key for a Portkey leaf, declaring `provider/model` when no entry matches.
    fn portkey_model(
        &mut self,
        provider: Option<String>,
        model_id: Option<Value>,
        at: &str,
    ) -> Option<String> {
        let model_id = match model_id {
            Some(Value::String(m)) if !m.is_empty() => m,
            _ => {
                self.errors.add(
                    format!("{at}.override_params.model"),
                    "a Portkey target needs override_params.model: the provider's model id",
                );
                return None;
            }
        };
        let (provider, model_id) = match (provider, model_id.strip_prefix('@')) {
            (Some(p), _) => (p, model_id),
            (None, Some(slug)) => match slug.split_once('/') {
                Some((p, m)) => (p.to_string(), m.to_string()),
                None => {
                    self.errors.add(
                        format!("{at}.override_params.model"),
                        "\"@provider/model\" needs a model after the slash",
                    );
                    return None;
                }
            },
            (None, None) => {
                self.errors.add(at, "a Portkey target needs provider or virtual_key naming a provider of this document");
                return None;
            }
        };
        if !self.providers.contains_key(&provider) {
            self.errors
                .add(at, format!("unknown provider \"{provider}\""));
            return None;
        }
        if let Some(m) = self
            .models
            .values()
            .find(|m| m.provider == provider && m.model == model_id && m.embeddings.is_none())
        {
            return Some(m.name.clone());
        }
        let key = format!("{provider}/{model_id}");
        self.models.insert(
            key.clone(),
            Model {
                name: key.clone(),
                provider,
                model: model_id,
                context_window: None,
                price: None,
                embeddings: None,
            },
        );
        Some(key)
    }
}

/// Put `settings` around a target (Portkey `single` mode with settings of its own).
fn wrap(target: Target, settings: Settings) -> Target {
    if settings == Settings::default() {
        return target;
    }
    Target::Fallback {
        targets: vec![target],
        on: FallbackOn::Default,
        settings,
    }
}
