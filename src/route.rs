//! Choosing where a request goes. `model: "auto"` classifies the request and walks the routes in
//! order (first match wins, then the default); a task named as `model` is classified as that task
//! and routed the same way; a model of the rules named as `model` is served directly. The result
//! is an attempt plan, and a trace of the decision for explain.

use crate::classify::{Classification, Texts};
use crate::error::{ApiError, ErrorCode};
use crate::plan::{plan, Attempt, Random};
use crate::rules::{Rules, Settings, Target};
use serde::Serialize;
use serde_json::Value;

/// The rule name recorded when the caller named a model of the rules directly.
pub const EXPLICIT_RULE: &str = "explicit";
/// The rule name recorded when no route matched.
pub const DEFAULT_RULE: &str = "default";
/// The requested model that asks the rules to choose.
pub const AUTO: &str = "auto";

/// How one route fared, for explain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteCheck {
    pub route: String,
    pub matched: bool,
    /// The clauses that did not hold (empty when it matched).
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The route that matched, `default`, or `explicit`.
    pub rule: String,
    pub classification: Classification,
    pub plan: Vec<Attempt>,
    /// Routes checked, in order, up to the one that matched (with `Trace::On`).
    pub checked: Vec<RouteCheck>,
}

/// Whether `decide` records why each route did not match (explain), or only decides (requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    Off,
    On,
}

/// Classify, then decide. `facts` gets `task` and `task_score` filled in.
pub fn decide(
    rules: &Rules,
    requested_model: &str,
    facts: &mut Value,
    texts: &Texts,
    rng: &dyn Random,
    trace: Trace,
) -> Result<Decision, ApiError> {
    let named_model = requested_model != AUTO && rules.models.contains_key(requested_model);
    let named_task =
        requested_model != AUTO && !named_model && rules.classifier.has_task(requested_model);
    if requested_model != AUTO && !named_model && !named_task {
        let names: Vec<&str> = std::iter::once(AUTO)
            .chain(rules.classifier.task_names())
            .chain(rules.models.keys().map(String::as_str))
            .collect();
        return Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!(
                "model \"{requested_model}\" is not known here; use one of: {}",
                names.join(", ")
            ),
        ));
    }
    let explicit = if named_task {
        Some(requested_model.to_string())
    } else {
        facts
            .pointer("/metadata/task")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let classification = rules.classifier.classify(texts, facts, explicit.as_deref());
    if let Some(obj) = facts.as_object_mut() {
        obj.insert(
            "task".into(),
            classification
                .task
                .clone()
                .map_or(Value::Null, Value::String),
        );
        obj.insert("task_score".into(), classification.score.into());
    }
    if named_model {
        let target = Target::Model {
            model: requested_model.to_string(),
            settings: Settings::default(),
        };
        return Ok(Decision {
            rule: EXPLICIT_RULE.into(),
            plan: plan(rules, &target, facts, rng, EXPLICIT_RULE),
            classification,
            checked: Vec::new(),
        });
    }
    let mut checked = Vec::new();
    for route in &rules.routes {
        let matched = match trace {
            Trace::Off => route.when.matches(facts),
            Trace::On => {
                let mut failed = Vec::new();
                let matched = route.when.explain(facts, &mut failed);
                checked.push(RouteCheck {
                    route: route.name.clone(),
                    matched,
                    failed,
                });
                matched
            }
        };
        if matched {
            return Ok(Decision {
                rule: route.name.clone(),
                plan: plan(
                    rules,
                    &route.then,
                    facts,
                    rng,
                    &format!("routes.{}", route.name),
                ),
                classification,
                checked,
            });
        }
    }
    Ok(Decision {
        rule: DEFAULT_RULE.into(),
        plan: plan(rules, &rules.default, facts, rng, DEFAULT_RULE),
        classification,
        checked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SeededRandom;
    use crate::rules::parse_rules;
    use serde_json::json;

    fn rules() -> Rules {
        parse_rules(
            &json!({
                "version": 1,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                "models": {"fast": {"provider": "p", "model": "f"}, "strong": {"provider": "p", "model": "s"}},
                "tasks": {"code": {"keywords": ["refactor"]}, "faq": {"when": {"metadata.channel": "support"}}},
                "routes": [
                    {"name": "paid", "when": {"metadata.plan": {"$in": ["pro", "team"]}}, "then": "strong"},
                    {"name": "code", "when": {"task": "code"}, "then": {"fallback": ["strong", "fast"]}}
                ],
                "default": "fast"
            })
            .to_string(),
        )
        .unwrap()
    }

    fn texts(s: &str) -> Texts {
        Texts {
            last_user: s.into(),
            system: String::new(),
            conversation: s.into(),
        }
    }

    fn run(model: &str, mut facts: Value, text: &str) -> Result<Decision, ApiError> {
        decide(
            &rules(),
            model,
            &mut facts,
            &texts(text),
            &SeededRandom::new(1),
            Trace::On,
        )
    }

    #[test]
    fn auto_classifies_then_takes_the_first_matching_route() {
        let d = run(
            "auto",
            json!({"metadata": {"plan": "pro"}}),
            "refactor this",
        )
        .unwrap();
        assert_eq!(d.rule, "paid");
        assert_eq!(d.classification.task.as_deref(), Some("code"));
        let d = run(
            "auto",
            json!({"metadata": {"plan": "free"}}),
            "refactor this",
        )
        .unwrap();
        assert_eq!(d.rule, "code");
        assert_eq!(
            d.plan.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
            ["strong", "fast"]
        );
        assert_eq!(d.checked.len(), 2);
        assert!(!d.checked[0].matched);
        assert!(
            d.checked[0].failed[0].starts_with("metadata.plan"),
            "{:?}",
            d.checked[0].failed
        );
        let d = run("auto", json!({"metadata": {}}), "hello").unwrap();
        assert_eq!(
            (d.rule.as_str(), d.plan[0].target.as_str()),
            ("default", "fast")
        );
    }

    #[test]
    fn a_task_named_as_model_or_in_metadata_is_explicit() {
        let d = run("code", json!({"metadata": {}}), "hello").unwrap();
        assert_eq!(
            (d.rule.as_str(), d.classification.source),
            ("code", "explicit")
        );
        let d = run("auto", json!({"metadata": {"task": "code"}}), "hello").unwrap();
        assert_eq!(d.rule, "code");
    }

    #[test]
    fn named_models_and_unknown_ones() {
        let d = run("strong", json!({"metadata": {"plan": "free"}}), "hi").unwrap();
        assert_eq!(
            (d.rule.as_str(), d.plan[0].model_id.as_str()),
            ("explicit", "s")
        );
        let e = run("gpt-9", json!({}), "hi").unwrap_err();
        assert_eq!(e.code, ErrorCode::ModelNotFound);
        assert!(
            e.message.contains("auto, code, faq, fast, strong"),
            "{}",
            e.message
        );
    }
}
