//! Turning the text of a rules document into `Rules`: strict JSON (no duplicate keys), raw serde
//! types per section (so one bad section does not hide the errors of another), then the checks that
//! need the whole document: references, URLs, names, conditions. Every error names its path, and
//! all of them are reported together.

use super::errors::{typed, Errors, RulesError};
use super::json_strict::duplicate_keys;
use super::model::{
    Cascade, Cooldown, Defaults, Embeddings, Model, Price, Provider, RetryPolicy, Route, Rules,
    TaskModelConfig,
};
use super::raw::{
    RawClassifier, RawDefaults, RawModel, RawPrice, RawProvider, RawRoute, RawTask, TargetValue,
};
use super::targets::TargetParser;
use crate::rules::condition::Condition;
use crate::rules::provider::{check_base_url, ProviderKind};
use crate::rules::tasks::{Classifier, TaskDef};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Top-level fields, checked by hand so that an error in one section does not hide the others
/// (kept equal to `RawRules`' fields by a test).
pub const TOP_LEVEL_FIELDS: [&str; 9] = [
    "version",
    "description",
    "providers",
    "models",
    "tasks",
    "routes",
    "default",
    "defaults",
    "classifier",
];

/// Statuses retried when a retry policy does not say.
pub const DEFAULT_RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];
/// Per-attempt timeout when the rules do not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Whole-request deadline when the rules do not say.
pub const DEFAULT_DEADLINE_MS: u64 = 120_000;
/// Provider calls per request when the rules do not say: the Workers Free plan's subrequest limit.
pub const DEFAULT_MAX_PROVIDER_CALLS: u32 = 50;
/// Circuit breaker when the rules do not say: 5 transient failures in a row, 30 s off.
pub const DEFAULT_COOLDOWN: Cooldown = Cooldown {
    after_failures: 5,
    cooldown_ms: 30_000,
};

/// The built-in retry policy: no retries unless the rules ask for them.
pub fn builtin_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 0,
        on_status: DEFAULT_RETRY_STATUSES.to_vec(),
        backoff_ms: 200,
        respect_retry_after: true,
    }
}

/// Parse and validate a rules document.
pub fn parse_rules(text: &str) -> Result<Rules, Vec<RulesError>> {
    let mut errors = Errors::default();
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            errors.add("", format!("not valid JSON: {e}"));
            return Err(errors.0);
        }
    };
    for path in duplicate_keys(text) {
        errors.add(
            path,
            "duplicate key (JSON keeps only the last one, so this is refused)",
        );
    }
    let Some(top) = doc.as_object() else {
        errors.add("", "the rules document must be a JSON object");
        return Err(errors.0);
    };
    for key in top.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            errors.add(
                key.clone(),
                format!(
                    "unknown field, expected one of: {}",
                    TOP_LEVEL_FIELDS.join(", ")
                ),
            );
        }
    }

    let version = match top.get("version") {
        Some(v) => v.as_u64().unwrap_or_else(|| {
            errors.add("version", "must be a non-negative integer");
            0
        }),
        None => {
            errors.add("version", "missing field");
            0
        }
    };
    if let Some(d) = top.get("description") {
        if !d.is_string() && !d.is_null() {
            errors.add("description", "must be a string");
        }
    }

    let raw_providers: BTreeMap<String, RawProvider> =
        section_map(top, "providers", true, &mut errors);
    let raw_models: BTreeMap<String, RawModel> = section_map(top, "models", true, &mut errors);
    let raw_tasks: BTreeMap<String, RawTask> = section_map(top, "tasks", false, &mut errors);
    let raw_routes: Vec<Option<RawRoute>> = section_list(top, "routes", &mut errors);
    let raw_default: Option<TargetValue> = match top.get("default") {
        Some(v) => Some(TargetValue(v.clone())),
        None => {
            errors.add(
                "default",
                "missing field: where requests go when no route matches",
            );
            None
        }
    };
    let raw_defaults: Option<RawDefaults> = top
        .get("defaults")
        .and_then(|v| typed(v, "defaults", &mut errors));

    let raw_classifier = top
        .get("classifier")
        .and_then(|v| typed::<RawClassifier>(v, "classifier", &mut errors));

    let providers = validate_providers(raw_providers, &mut errors);
    let mut models = validate_models(raw_models, &providers, &mut errors);
    let task_model = raw_classifier.and_then(|c| validate_classifier(c, &models, &mut errors));
    let classifier = validate_tasks(raw_tasks, &models, &mut errors);

    let mut parser = TargetParser {
        providers: &providers,
        models: &mut models,
        errors: &mut errors,
        default_retry: &builtin_retry(),
    };
    let defaults = validate_defaults(raw_defaults, &mut parser);
    let default_retry = defaults.retry.clone();
    parser.default_retry = &default_retry;
    let routes = validate_routes(raw_routes, &mut parser);
    let default = raw_default.and_then(|t| parser.parse(&t.0, "default"));

    match (default, classifier) {
        (Some(default), Some(classifier)) if errors.0.is_empty() => Ok(Rules {
            version,
            providers,
            models,
            classifier,
            task_model,
            routes,
            default,
            defaults,
        }),
        _ => Err(errors.0),
    }
}

/// The task model the rules turn on, loaded once per rules version.
fn validate_classifier(
    raw: RawClassifier,
    models: &BTreeMap<String, Model>,
    errors: &mut Errors,
) -> Option<TaskModelConfig> {
    let min_score = raw.min_score.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&min_score) {
        errors.add("classifier.min_score", "must be between 0 and 1");
        return None;
    }
    let cascade = match raw.cascade {
        None => None,
        Some(c) => {
            let below = c.below.unwrap_or(min_score);
            if !(0.0..=1.0).contains(&below) {
                errors.add("classifier.cascade.below", "must be between 0 and 1");
                return None;
            }
            if !models.contains_key(&c.model) {
                errors.add(
                    "classifier.cascade.model",
                    format!(
                        "unknown model \"{}\"; the cascade asks a model of the rules",
                        c.model
                    ),
                );
                return None;
            }
            if models[&c.model].embeddings.is_some() {
                errors.add(
                    "classifier.cascade.model",
                    format!(
                        "\"{}\" is an embedding model; the cascade asks a chat model",
                        c.model
                    ),
                );
                return None;
            }
            let timeout_ms = c.timeout_ms.unwrap_or(3_000);
            if timeout_ms == 0 || timeout_ms > 60_000 {
                errors.add("classifier.cascade.timeout_ms", "must be 1 to 60000");
                return None;
            }
            Some(Cascade {
                model: c.model,
                below,
                timeout_ms,
            })
        }
    };
    let kv_key = match raw.model.as_str() {
        "builtin" => None,
        other => match other.strip_prefix("kv:") {
            Some(key) if !key.is_empty() && key.len() <= 512 => Some(key.to_string()),
            _ => {
                errors.add(
                    "classifier.model",
                    format!("unknown model \"{other}\"; use \"builtin\" or \"kv:<key>\""),
                );
                return None;
            }
        },
    };
    match crate::task_model::builtin() {
        Ok(model) => Some(TaskModelConfig {
            model,
            kv_key,
            min_score,
            cascade,
        }),
        Err(e) => {
            errors.add("classifier.model", e);
            None
        }
    }
}

fn section_map<T: DeserializeOwned>(
    top: &Map<String, Value>,
    name: &str,
    required: bool,
    errors: &mut Errors,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    match top.get(name) {
        None if required => errors.add(name, "missing field"),
        None => {}
        Some(Value::Object(entries)) => {
            if entries.is_empty() && required {
                errors.add(name, "must name at least one entry");
            }
            for (key, value) in entries {
                check_name(key, &format!("{name}.{key}"), errors);
                if let Some(t) = typed(value, &format!("{name}.{key}"), errors) {
                    out.insert(key.clone(), t);
                }
            }
        }
        Some(_) => errors.add(name, "must be an object keyed by name"),
    }
    out
}

fn section_list<T: DeserializeOwned>(
    top: &Map<String, Value>,
    name: &str,
    errors: &mut Errors,
) -> Vec<Option<T>> {
    match top.get(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| typed(v, &format!("{name}[{i}]"), errors))
            .collect(),
        Some(_) => {
            errors.add(name, "must be an array");
            Vec::new()
        }
    }
}

/// Names appear in headers and analytics: keep them short and plain.
fn check_name(name: &str, at: &str, errors: &mut Errors) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        errors.add(
            at,
            "names must be 1-64 characters of letters, digits, '-', '_' or '.'",
        );
    }
}

fn validate_providers(
    raw: BTreeMap<String, RawProvider>,
    errors: &mut Errors,
) -> BTreeMap<String, Provider> {
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        let at = format!("providers.{name}");
        let kind = match ProviderKind::parse(&p.kind) {
            Ok(k) => Some(k),
            Err(msg) => {
                errors.add(format!("{at}.kind"), msg);
                None
            }
        };
        let base_url = match (kind.map(ProviderKind::bound), &p.base_url) {
            (Some(true), None) => Some(String::new()),
            (Some(true), Some(_)) => {
                errors.add(
                    format!("{at}.base_url"),
                    "workers_ai is reached through the Worker's AI binding: it has no base_url",
                );
                None
            }
            (_, None) => {
                errors.add(format!("{at}.base_url"), "is required");
                None
            }
            (_, Some(url)) => match check_base_url(url) {
                Ok(u) => Some(u),
                Err(msg) => {
                    errors.add(format!("{at}.base_url"), msg);
                    None
                }
            },
        };
        if let Some(region) = &p.region {
            let ok = !region.is_empty()
                && region.len() <= 32
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if kind.is_some_and(|k| k != ProviderKind::Bedrock) {
                errors.add(
                    format!("{at}.region"),
                    "only bedrock providers have a region",
                );
            } else if !ok {
                errors.add(format!("{at}.region"), "must look like us-east-1");
            }
        }
        if kind.is_some_and(ProviderKind::bound) && p.api_key_secret.is_some() {
            errors.add(
                format!("{at}.api_key_secret"),
                "workers_ai needs no key: the Worker's AI binding runs the model",
            );
        }
        if let Some(secret) = &p.api_key_secret {
            let ok = !secret.is_empty()
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                errors.add(
                    format!("{at}.api_key_secret"),
                    "must be a Worker secret name (letters, digits, '_')",
                );
            }
        }
        for (header, value) in &p.headers {
            let reserved = [
                "authorization",
                "content-type",
                "content-length",
                "host",
                "api-key",
                "x-api-key",
            ];
            if header.is_empty()
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                errors.add(format!("{at}.headers.{header}"), "not a valid header name");
            } else if reserved.contains(&header.to_ascii_lowercase().as_str()) {
                errors.add(
                    format!("{at}.headers.{header}"),
                    "set by the router; keys belong in api_key_secret",
                );
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                errors.add(
                    format!("{at}.headers.{header}"),
                    "header values cannot contain line breaks",
                );
            }
        }
        if let Some(v) = &p.api_version {
            let ok = !v.is_empty()
                && v.len() <= 40
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                errors.add(format!("{at}.api_version"), "must look like 2024-10-21");
            }
        }
        if let (Some(kind), Some(base_url)) = (kind, base_url) {
            let headers = p.headers.into_iter().collect();
            out.insert(
                name.clone(),
                Provider {
                    name,
                    kind,
                    base_url,
                    api_key_secret: p.api_key_secret,
                    headers,
                    api_version: p.api_version,
                    allow_byok: p.allow_byok,
                    region: p.region,
                },
            );
        }
    }
    out
}

fn validate_models(
    raw: BTreeMap<String, RawModel>,
    providers: &BTreeMap<String, Provider>,
    errors: &mut Errors,
) -> BTreeMap<String, Model> {
    let mut out = BTreeMap::new();
    for (name, m) in raw {
        let at = format!("models.{name}");
        if name == crate::rules::names::AUTO {
            errors.add(&at, "\"auto\" is reserved for routing by the rules");
        }
        if !providers.contains_key(&m.provider) {
            errors.add(
                format!("{at}.provider"),
                format!("unknown provider \"{}\"", m.provider),
            );
        }
        if m.model.trim().is_empty() {
            errors.add(format!("{at}.model"), "must not be empty");
        }
        if m.context_window == Some(0) {
            errors.add(format!("{at}.context_window"), "must be positive");
        }
        let price = m
            .price_per_mtok
            .map(|p| check_price(p, &format!("{at}.price_per_mtok"), errors));
        let embeddings = m.embeddings.map(|e| Embeddings {
            dimensions: e.dimensions,
            fallback: e.fallback,
        });
        if let (Some(e), Some(p)) = (&embeddings, providers.get(&m.provider)) {
            if e.dimensions == 0 {
                errors.add(format!("{at}.embeddings.dimensions"), "must be positive");
            }
            if !p.kind.embeds() {
                errors.add(
                    format!("{at}.embeddings"),
                    format!(
                        "provider \"{}\" is of kind {}, which has no embeddings API (kinds that embed: {})",
                        p.name,
                        p.kind.as_str(),
                        ProviderKind::EMBEDDING_KINDS.join(", ")
                    ),
                );
            }
        }
        out.insert(
            name.clone(),
            Model {
                name,
                provider: m.provider,
                model: m.model,
                context_window: m.context_window,
                price,
                embeddings,
            },
        );
    }
    check_embedding_fallbacks(&out, errors);
    out
}

/// An embedding model falls back only to other embedding models whose vectors have its length.
fn check_embedding_fallbacks(models: &BTreeMap<String, Model>, errors: &mut Errors) {
    for (name, m) in models {
        let Some(e) = &m.embeddings else { continue };
        for (i, other) in e.fallback.iter().enumerate() {
            let at = format!("models.{name}.embeddings.fallback[{i}]");
            match models.get(other).map(|o| (o, &o.embeddings)) {
                None => errors.add(at, format!("unknown model \"{other}\"")),
                Some(_) if other == name => errors.add(at, "a model cannot fall back to itself"),
                Some((_, None)) => errors.add(
                    at,
                    format!("\"{other}\" is a chat model; embedding models fall back to embedding models"),
                ),
                Some((_, Some(o))) if o.dimensions != e.dimensions => errors.add(
                    at,
                    format!(
                        "\"{other}\" returns {} dimensions, not {}: vectors of different models cannot be mixed",
                        o.dimensions, e.dimensions
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}

fn check_price(p: RawPrice, at: &str, errors: &mut Errors) -> Price {
    for (field, v) in [
        ("input", Some(p.input)),
        ("output", Some(p.output)),
        ("cached_input", p.cached_input),
    ] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                errors.add(
                    format!("{at}.{field}"),
                    "must be a non-negative number of US dollars",
                );
            }
        }
    }
    Price {
        input: p.input,
        output: p.output,
        cached_input: p.cached_input,
    }
}

fn validate_tasks(
    raw: BTreeMap<String, RawTask>,
    models: &BTreeMap<String, Model>,
    errors: &mut Errors,
) -> Option<Classifier> {
    let mut defs = Vec::new();
    let before = errors.0.len();
    for (name, t) in raw {
        let at = format!("tasks.{name}");
        if name == crate::rules::names::AUTO || models.contains_key(&name) {
            errors.add(&at, "task names must differ from model names and \"auto\" (both can be requested as `model`)");
        }
        if t.keywords.is_empty() && t.regex.is_empty() && t.when.is_none() {
            errors.add(
                &at,
                "recognises nothing: give keywords, regex or when (or request it by name)",
            );
        }
        for (i, k) in t.keywords.iter().enumerate() {
            if k.trim().is_empty() {
                errors.add(format!("{at}.keywords[{i}]"), "must not be empty");
            }
        }
        let when =
            t.when
                .as_ref()
                .and_then(|w| match Condition::parse(&w.0, &format!("{at}.when")) {
                    Ok(c) => Some(c),
                    Err(list) => {
                        for e in list {
                            errors.add(e.path, e.message);
                        }
                        None
                    }
                });
        let min_score = t.min_score.unwrap_or(1.0);
        if !(min_score.is_finite() && min_score > 0.0) {
            errors.add(format!("{at}.min_score"), "must be a positive number");
        }
        defs.push(TaskDef {
            name,
            keywords: t.keywords,
            regex: t.regex,
            when,
            priority: t.priority,
            scope: t.scope.unwrap_or(super::raw::RawScope::LastUser),
            whole_words: t.whole_words.unwrap_or(true),
            min_score,
        });
    }
    // The regexes are compiled once, as each scope's set; only when that fails, or the tasks are
    // already wrong, is each compiled alone, to say which is wrong.
    let each_alone = |defs: &[TaskDef], errors: &mut Errors| {
        for d in defs {
            for (i, r) in d.regex.iter().enumerate() {
                if let Err(e) = crate::rules::pattern::compile(r) {
                    errors.add(
                        format!("tasks.{}.regex[{i}]", d.name),
                        format!("invalid regex: {e}"),
                    );
                }
            }
        }
    };
    if errors.0.len() > before {
        each_alone(&defs, errors);
        return None;
    }
    match Classifier::scopes(&defs) {
        Ok(scopes) => Some(Classifier {
            tasks: defs,
            scopes,
        }),
        Err(e) => {
            each_alone(&defs, errors);
            if errors.0.len() == before {
                errors.add("tasks", e);
            }
            None
        }
    }
}

fn validate_defaults(raw: Option<RawDefaults>, parser: &mut TargetParser<'_>) -> Defaults {
    let raw = raw.unwrap_or(RawDefaults {
        retry: None,
        timeout_ms: None,
        deadline_ms: None,
        max_provider_calls: None,
        cooldown: None,
    });
    let retry = match raw.retry {
        Some(r) => parser.retry(r, "defaults.retry"),
        None => builtin_retry(),
    };
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > 600_000 {
        parser
            .errors
            .add("defaults.timeout_ms", "must be between 1 and 600000 ms");
    }
    let deadline_ms = raw
        .deadline_ms
        .unwrap_or(DEFAULT_DEADLINE_MS.max(timeout_ms));
    if deadline_ms < timeout_ms || deadline_ms > 900_000 {
        parser.errors.add(
            "defaults.deadline_ms",
            "must be at least timeout_ms and at most 900000 ms",
        );
    }
    let max_provider_calls = raw.max_provider_calls.unwrap_or(DEFAULT_MAX_PROVIDER_CALLS);
    if !(1..=1000).contains(&max_provider_calls) {
        parser
            .errors
            .add("defaults.max_provider_calls", "must be between 1 and 1000");
    }
    let cooldown = raw.cooldown.map_or(DEFAULT_COOLDOWN, |c| Cooldown {
        after_failures: c.after_failures.unwrap_or(DEFAULT_COOLDOWN.after_failures),
        cooldown_ms: c.cooldown_ms.unwrap_or(DEFAULT_COOLDOWN.cooldown_ms),
    });
    if cooldown.after_failures > 0 && !(1..=3_600_000).contains(&cooldown.cooldown_ms) {
        parser.errors.add(
            "defaults.cooldown.cooldown_ms",
            "must be between 1 and 3600000 ms",
        );
    }
    Defaults {
        retry,
        timeout_ms,
        deadline_ms,
        max_provider_calls,
        cooldown,
    }
}

fn validate_routes(raw: Vec<Option<RawRoute>>, parser: &mut TargetParser<'_>) -> Vec<Route> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let Some(r) = r else { continue };
        let at = format!("routes[{i}]");
        check_name(&r.name, &format!("{at}.name"), parser.errors);
        if r.name == crate::rules::names::DEFAULT_RULE
            || r.name == crate::rules::names::EXPLICIT_RULE
        {
            parser
                .errors
                .add(format!("{at}.name"), format!("\"{}\" is reserved", r.name));
        }
        if !names.insert(r.name.clone()) {
            parser.errors.add(
                format!("{at}.name"),
                format!("route name \"{}\" is used twice", r.name),
            );
        }
        let when = match &r.when {
            None => Some(Condition::All(Vec::new())),
            Some(v) => match Condition::parse(&v.0, &format!("{at}.when")) {
                Ok(c) => Some(c),
                Err(list) => {
                    for e in list {
                        parser.errors.add(e.path, e.message);
                    }
                    None
                }
            },
        };
        let then = parser.parse(&r.then.0, &format!("{at}.then"));
        if let (Some(when), Some(then)) = (when, then) {
            out.push(Route {
                name: r.name,
                when,
                then,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Target;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "version": 3,
            "providers": {
                "mock": {"kind": "openai_compatible", "base_url": "http://127.0.0.1:8788/v1", "api_key_secret": "MOCK_API_KEY"},
                "openai": {"kind": "openai", "base_url": "https://api.openai.com/v1/", "api_key_secret": "OPENAI_API_KEY",
                           "headers": {"OpenAI-Organization": "org-1"}}
            },
            "models": {
                "fast": {"provider": "mock", "model": "mock-fast", "context_window": 8192,
                         "price_per_mtok": {"input": 0.05, "output": 0.08}},
                "strong": {"provider": "openai", "model": "gpt-4o"}
            },
            "routes": [
                {"name": "pro", "when": {"metadata.plan": {"$in": ["pro", "team"]}}, "then": "strong"},
                {"name": "always", "then": "fast"}
            ],
            "default": "fast"
        })
    }

    fn errors_of(doc: &Value) -> Vec<String> {
        parse_rules(&doc.to_string())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_document_validates() {
        let rules = parse_rules(&base().to_string()).unwrap();
        assert_eq!(rules.version, 3);
        assert_eq!(rules.routes.len(), 2);
        assert!(matches!(&rules.default, Target::Model { model, .. } if model == "fast"));
        let (model, provider) = rules.resolve("strong").unwrap();
        assert_eq!(model.model, "gpt-4o");
        assert_eq!(provider.base_url, "https://api.openai.com/v1");
        assert_eq!(
            provider.headers,
            vec![("OpenAI-Organization".to_string(), "org-1".to_string())]
        );
        assert_eq!(rules.models["fast"].price.unwrap().output, 0.08);
    }

    #[test]
    fn the_bundled_default_rules_validate() {
        let text = include_str!("../../rules/default.json");
        let rules = parse_rules(text).unwrap();
        assert!(!rules.routes.is_empty());
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let mut doc = base();
        doc["providers"]["openai"]["base_url"] = json!("http://api.openai.com/v1");
        doc["providers"]["mock"]["kind"] = json!("grok");
        doc["models"]["fast"]["provider"] = json!("nope");
        doc["models"]["strong"]["temperature"] = json!(1);
        doc["routes"][0]["then"] = json!("strongg");
        doc["routes"][1]["when"] = json!({"x": {"$bad": 1}});
        doc["routes"][1]["name"] = json!("pro");
        doc["default"] = json!("missing");
        doc["extra"] = json!(true);
        let errors = errors_of(&doc);
        let want = [
            "extra: unknown field",
            "providers.openai.base_url: must use https",
            "providers.mock.kind: unknown provider kind \"grok\"",
            "models.fast.provider: unknown provider \"nope\"",
            "models.strong.temperature: unknown field `temperature`",
            "routes[0].then: unknown model \"strongg\"",
            "routes[1].when.x.$bad: unknown operator $bad",
            "routes[1].name: route name \"pro\" is used twice",
            "default: unknown model \"missing\"",
        ];
        for w in want {
            assert!(
                errors.iter().any(|e| e.starts_with(w)),
                "missing {w:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn cooldown_takes_either_field_alone_and_zero_failures_turns_it_off() {
        let cooldown = |c: Value| {
            let mut doc = base();
            doc["defaults"] = json!({ "cooldown": c });
            parse_rules(&doc.to_string()).map(|r| r.defaults.cooldown)
        };
        let off = cooldown(json!({"after_failures": 0})).unwrap();
        assert_eq!(off.after_failures, 0, "the documented way to turn it off");
        let c = cooldown(json!({"cooldown_ms": 5000})).unwrap();
        assert_eq!((c.after_failures, c.cooldown_ms), (5, 5000));
        let c = cooldown(json!({"after_failures": 2})).unwrap();
        assert_eq!((c.after_failures, c.cooldown_ms), (2, 30_000));
        let errors = cooldown(json!({"after_failures": 2, "cooldown_ms": 0})).unwrap_err();
        assert!(
            errors[0]
                .to_string()
                .starts_with("defaults.cooldown.cooldown_ms"),
            "{errors:?}"
        );
    }

    #[test]
    fn embedding_models_are_kept_apart_from_chat_and_fall_back_to_their_own_length() {
        let mut doc = base();
        doc["providers"]["claude"] =
            json!({"kind": "anthropic", "base_url": "https://api.anthropic.com"});
        doc["models"]["e1"] = json!({"provider": "openai", "model": "text-embedding-3-small", "embeddings": {"dimensions": 1536, "fallback": ["e2"]}});
        doc["models"]["e2"] =
            json!({"provider": "mock", "model": "te3s", "embeddings": {"dimensions": 1536}});
        let rules = parse_rules(&doc.to_string()).unwrap();
        assert_eq!(
            rules.models["e1"].embeddings,
            Some(Embeddings {
                dimensions: 1536,
                fallback: vec!["e2".into()]
            })
        );
        let chat: Vec<&str> = rules.chat_models().map(|m| m.name.as_str()).collect();
        assert_eq!(chat, ["fast", "strong"]);
        assert_eq!(rules.embedding_models().count(), 2);

        doc["models"]["e3"] = json!({"provider": "mock", "model": "x", "embeddings": {"dimensions": 768, "fallback": ["e1", "fast", "e3", "nope"]}});
        doc["models"]["e4"] =
            json!({"provider": "claude", "model": "y", "embeddings": {"dimensions": 0}});
        doc["routes"][1]["then"] = json!({"fallback": ["fast", "e1"]});
        doc["default"] = json!("e2");
        let errors = errors_of(&doc);
        let want = [
            "models.e3.embeddings.fallback[0]: \"e1\" returns 1536 dimensions, not 768",
            "models.e3.embeddings.fallback[1]: \"fast\" is a chat model",
            "models.e3.embeddings.fallback[2]: a model cannot fall back to itself",
            "models.e3.embeddings.fallback[3]: unknown model \"nope\"",
            "models.e4.embeddings.dimensions: must be positive",
            "models.e4.embeddings: provider \"claude\" is of kind anthropic, which has no embeddings API",
            "routes[1].then.fallback[1]: \"e1\" is an embedding model",
            "default: \"e2\" is an embedding model",
        ];
        for w in want {
            assert!(errors.iter().any(|e| e.starts_with(w)), "{w}\n{errors:#?}");
        }
    }

    #[test]
    fn workers_ai_has_no_url_or_key() {
        let mut doc = base();
        doc["providers"]["cf"] = json!({"kind": "workers_ai"});
        doc["models"]["llama"] =
            json!({"provider": "cf", "model": "@cf/meta/llama-3.1-8b-instruct"});
        let rules = parse_rules(&doc.to_string()).unwrap();
        assert_eq!(rules.providers["cf"].kind, ProviderKind::WorkersAi);
        doc["providers"]["cf"] = json!({"kind": "workers_ai", "base_url": "https://x.example",
                                        "api_key_secret": "K", "region": "us-east-1"});
        doc["providers"]["aws"] = json!({"kind": "bedrock", "region": "EU WEST",
                                         "base_url": "https://bedrock-runtime.eu-west-1.amazonaws.com"});
        doc["providers"]["openai"]
            .as_object_mut()
            .unwrap()
            .remove("base_url");
        let errors = errors_of(&doc);
        for w in [
            "providers.cf.base_url: workers_ai is reached through the Worker's AI binding",
            "providers.cf.api_key_secret: workers_ai needs no key",
            "providers.openai.base_url: is required",
            "providers.cf.region: only bedrock providers have a region",
            "providers.aws.region: must look like us-east-1",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(w)), "{w}\n{errors:#?}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let text = r#"{"version": 1, "version": 2, "providers": {"p": {"kind": "openai", "base_url": "https://x.example/v1"}},
                       "models": {"m": {"provider": "p", "model": "a", "model": "b"}}, "default": "m"}"#;
        let errors: Vec<String> = parse_rules(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("version: duplicate key"));
        assert!(errors[1].starts_with("models.m.model: duplicate key"));
    }

    #[test]
    fn structural_problems_are_named() {
        let table = [
            (json!([]), "the rules document must be a JSON object"),
            (
                json!({"providers": {}, "models": {}}),
                "version: missing field",
            ),
            (
                json!({"version": -1}),
                "version: must be a non-negative integer",
            ),
            (
                json!({"version": 1, "providers": [], "models": {}, "default": "x"}),
                "providers: must be an object",
            ),
            (
                json!({"version": 1, "providers": {}, "models": {}, "default": "x"}),
                "providers: must name at least one",
            ),
            (
                json!({"version": 1, "routes": {}}),
                "routes: must be an array",
            ),
            (json!({"version": 1}), "default: missing field"),
        ];
        for (doc, want) in table {
            let errors = errors_of(&doc);
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{want:?} not in {errors:?}"
            );
        }
        let errors = parse_rules("{\"version\": 1,").unwrap_err();
        assert!(errors[0].message.starts_with("not valid JSON"));
    }

    #[test]
    fn values_are_checked() {
        let mut doc = base();
        doc["models"]["fast"]["price_per_mtok"]["input"] = json!(-1);
        doc["models"]["fast"]["context_window"] = json!(0);
        doc["models"]["auto"] = json!({"provider": "mock", "model": " "});
        doc["providers"]["mock"]["api_key_secret"] = json!("bad name");
        doc["providers"]["mock"]["headers"] = json!({"Authorization": "x", "X-Ok": "a\nb"});
        doc["routes"][0]["name"] = json!("has space");
        let errors = errors_of(&doc);
        for w in [
            "models.fast.price_per_mtok.input: must be a non-negative",
            "models.fast.context_window: must be positive",
            "models.auto: \"auto\" is reserved",
            "models.auto.model: must not be empty",
            "providers.mock.api_key_secret: must be a Worker secret name",
            "providers.mock.headers.Authorization: set by the router",
            "providers.mock.headers.X-Ok: header values cannot contain line breaks",
            "routes[0].name: names must be",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(w)),
                "missing {w:?} in {errors:#?}"
            );
        }
    }
}
