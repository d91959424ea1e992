//! Choosing where a request goes. `model: "auto"` classifies the request and walks the routes in
//! order (first match wins, then the default); a task named as `model` is classified as that task
//! and routed the same way; a model of the rules named as `model` is served directly. The result
//! is an attempt plan, and a trace of the decision for explain.

use crate::decide::classify::{Classification, ModelVerdict, TaskSource, Texts};
use crate::decide::plan::{plan, Attempt};
use crate::error::{ApiError, ErrorCode};
use crate::ports::Random;
use crate::rules::names::{AUTO, DEFAULT_RULE, EXPLICIT_RULE};
use crate::rules::{Cascade, Rules, Settings, Target};
use serde::Serialize;
use serde_json::Value;

/// How one route fared, for explain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteCheck {
    pub route: String,
    pub matched: bool,
    /// The clauses that did not hold (empty when it matched).
    pub failed: Vec<String>,
}

/// An attempt dropped before any call, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub target: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The route that matched, `default`, or `explicit`.
    pub rule: String,
    pub classification: Classification,
    pub plan: Vec<Attempt>,
    /// Routes checked, in order, up to the one that matched (with `Trace::On`).
    pub checked: Vec<RouteCheck>,
    /// Attempts dropped because the model's context window cannot hold the request.
    pub skipped: Vec<Skipped>,
}

/// Drop attempts whose model cannot hold the estimated prompt plus the answer asked for. When none
/// is left, the request cannot be served: say so with the numbers.
fn fit_context(rules: &Rules, decision: &mut Decision, facts: &Value) -> Result<(), ApiError> {
    let prompt = facts
        .get("estimated_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let asked = facts.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    let mut largest = 0;
    let plan = std::mem::take(&mut decision.plan);
    for attempt in plan {
        let answer = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| attempt.overrides.get(*k).and_then(Value::as_u64))
            .unwrap_or(asked);
        let window = rules
            .models
            .get(&attempt.target)
            .and_then(|m| m.context_window);
        match window {
            Some(w) if prompt + answer > w => {
                largest = largest.max(w);
                decision.skipped.push(Skipped {
                    target: attempt.target.clone(),
                    reason: format!(
                        "context window {w} tokens < ~{prompt} prompt + {answer} answer tokens"
                    ),
                });
            }
            _ => decision.plan.push(attempt),
        }
    }
    if decision.plan.is_empty() && !decision.skipped.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "the request needs about {} tokens (prompt ~{prompt} + answer {asked}); the largest context window among its targets is {largest}",
                prompt + asked
            ),
        ));
    }
    Ok(())
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
    decide_with(rules, requested_model, facts, texts, rng, trace, None)
}

/// The cascade the rules ask for, when the decision's task came from an unsure built-in model (or
/// from nothing) and no rule or caller named the task.
pub fn wants_cascade<'r>(rules: &'r Rules, decision: &Decision) -> Option<&'r Cascade> {
    let cascade = rules.task_model.as_ref()?.cascade.as_ref()?;
    let verdict = decision.classification.model.as_ref()?;
    let unsure = matches!(
        decision.classification.source,
        TaskSource::Model | TaskSource::None
    );
    (unsure && verdict.score < cascade.below).then_some(cascade)
}

/// `decide`, with the label a cascade model gave (`wants_cascade`): it becomes the task (source
/// `cascade`, score 1) unless a rule's task or the caller's wins.
pub fn decide_with(
    rules: &Rules,
    requested_model: &str,
    facts: &mut Value,
    texts: &Texts,
    rng: &dyn Random,
    trace: Trace,
    cascade_label: Option<&str>,
) -> Result<Decision, ApiError> {
    let named = rules.models.get(requested_model);
    if named.is_some_and(|m| m.embeddings.is_some()) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("\"{requested_model}\" is an embedding model: send it to /v1/embeddings"),
        ));
    }
    let named_model = requested_model != AUTO && named.is_some();
    let named_task =
        requested_model != AUTO && !named_model && rules.classifier.has_task(requested_model);
    if requested_model != AUTO && !named_model && !named_task {
        let names: Vec<&str> = std::iter::once(AUTO)
            .chain(rules.classifier.task_names())
            .chain(rules.chat_models().map(|m| m.name.as_str()))
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
    // The task model labels requests the rules route (not a model named outright, nor a task the
    // caller named); its answer is a fact tasks' and routes' conditions can read.
    let verdict = match (&rules.task_model, named_model, &explicit) {
        (Some(config), false, None) => {
            let v = ModelVerdict::of(&config.model, texts);
            if let Some(obj) = facts.as_object_mut() {
                obj.insert("model_task".into(), Value::String(v.task.clone()));
                obj.insert("model_score".into(), v.score.into());
            }
            Some((v, config.min_score))
        }
        _ => None,
    };
    let mut classification = rules.classifier.classify(texts, facts, explicit.as_deref());
    if let Some((v, min_score)) = verdict {
        if classification.task.is_none() && v.score >= min_score {
            classification.task = Some(v.task.clone());
            classification.score = v.score;
            classification.source = TaskSource::Model;
        }
        classification.model = Some(v);
    }
    if let Some(label) = cascade_label {
        if matches!(classification.source, TaskSource::Model | TaskSource::None) {
            classification.task = Some(label.to_string());
            classification.score = 1.0;
            classification.source = TaskSource::Cascade;
        }
    }
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
        let mut decision = Decision {
            rule: EXPLICIT_RULE.into(),
            plan: plan(rules, &target, facts, rng, EXPLICIT_RULE),
            classification,
            checked: Vec::new(),
            skipped: Vec::new(),
        };
        fit_context(rules, &mut decision, facts)?;
        return Ok(decision);
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
            let mut decision = Decision {
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
                skipped: Vec::new(),
            };
            fit_context(rules, &mut decision, facts)?;
            return Ok(decision);
        }
    }
    let mut decision = Decision {
        rule: DEFAULT_RULE.into(),
        plan: plan(rules, &rules.default, facts, rng, DEFAULT_RULE),
        classification,
        checked,
        skipped: Vec::new(),
    };
    fit_context(rules, &mut decision, facts)?;
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededRandom;
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

    fn run_on(
        rules: &Rules,
        model: &str,
        mut facts: Value,
        text: &str,
    ) -> Result<Decision, ApiError> {
        decide(
            rules,
            model,
            &mut facts,
            &texts(text),
            &SeededRandom::new(1),
            Trace::On,
        )
    }

    fn run(model: &str, facts: Value, text: &str) -> Result<Decision, ApiError> {
        run_on(&rules(), model, facts, text)
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
            (d.rule.as_str(), d.classification.source.as_str()),
            ("code", "explicit")
        );
        let d = run("auto", json!({"metadata": {"task": "code"}}), "hello").unwrap();
        assert_eq!(d.rule, "code");
    }

    #[test]
    fn targets_too_small_for_the_request_are_skipped() {
        let small = parse_rules(
            &json!({
                "version": 1,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                "models": {"small": {"provider": "p", "model": "s", "context_window": 1000},
                           "big": {"provider": "p", "model": "b", "context_window": 100000},
                           "unknown": {"provider": "p", "model": "u"}},
                "default": {"fallback": ["small", {"model": "big", "override": {"max_tokens": 99000}}, "unknown"]}
            })
            .to_string(),
        )
        .unwrap();
        let run = |tokens: u64, max: u64| {
            let mut facts = json!({"metadata": {}, "estimated_tokens": tokens, "max_tokens": max});
            decide(
                &small,
                "auto",
                &mut facts,
                &texts("x"),
                &SeededRandom::new(1),
                Trace::On,
            )
        };
        let d = run(100, 100).unwrap();
        assert_eq!(
            d.plan.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
            ["small", "big", "unknown"]
        );
        let d = run(950, 100).unwrap();
        assert_eq!(
            d.plan.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
            ["big", "unknown"]
        );
        assert_eq!(
            d.skipped[0].reason,
            "context window 1000 tokens < ~950 prompt + 100 answer tokens"
        );
        let d = run(2000, 0).unwrap();
        assert_eq!(
            d.skipped
                .iter()
                .map(|s| s.target.as_str())
                .collect::<Vec<_>>(),
            ["small", "big"],
            "99000 + 2000 > 100000"
        );
        let small_only = parse_rules(
            &json!({"version": 1, "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                    "models": {"small": {"provider": "p", "model": "s", "context_window": 1000}}, "default": "small"})
            .to_string(),
        )
        .unwrap();
        let mut facts = json!({"metadata": {}, "estimated_tokens": 5000});
        let e = decide(
            &small_only,
            "auto",
            &mut facts,
            &texts("x"),
            &SeededRandom::new(1),
            Trace::Off,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ContextLengthExceeded);
        assert!(
            e.message
                .contains("largest context window among its targets is 1000"),
            "{}",
            e.message
        );
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

    fn model_rules(min_score: f64) -> Rules {
        parse_rules(
            &json!({
                "version": 1,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                "models": {"fast": {"provider": "p", "model": "f"}, "strong": {"provider": "p", "model": "s"}, "lingo": {"provider": "p", "model": "l"}},
                "tasks": {"code": {"keywords": ["refactor"]}},
                "classifier": {"min_score": min_score},
                "routes": [
                    {"name": "code", "when": {"task": "code"}, "then": "strong"},
                    {"name": "sure-codegen", "when": {"model_task": "code_generation", "model_score": {"$gte": 0.7}}, "then": "strong"},
                    {"name": "translate", "when": {"task": "translation"}, "then": "lingo"}
                ],
                "default": "fast"
            })
            .to_string(),
        )
        .unwrap()
    }

    fn run_with(rules: &Rules, facts: Value, text: &str) -> Decision {
        run_on(rules, "auto", facts, text).unwrap()
    }

    #[test]
    fn the_task_model_labels_what_no_rule_recognises() {
        let rules = model_rules(0.5);
        let d = run_with(
            &rules,
            json!({}),
            "Translate this into German: 'The parcel arrives on Monday.'",
        );
        assert_eq!(d.classification.source.as_str(), "model");
        assert_eq!(d.classification.task.as_deref(), Some("translation"));
        assert_eq!(d.rule, "translate");
        let v = d.classification.model.as_ref().unwrap();
        assert_eq!(v.top.len(), 3);
        assert!(v.score >= 0.5 && v.score <= 1.0, "{v:?}");
        // A rule's task wins over the model; the model's answer is still a fact and in explain.
        let d = run_with(&rules, json!({}), "please refactor this translation helper");
        assert_eq!(
            (d.classification.source.as_str(), d.rule.as_str()),
            ("rules", "code")
        );
        assert!(d.classification.model.is_some());
        // Routes read the model's own facts.
        let d = run_with(
            &rules,
            json!({}),
            "Write a Python function that merges two sorted lists and returns the result.",
        );
        assert_eq!(d.rule, "sure-codegen", "{:?}", d.classification);
        // A caller's task skips the model.
        let d = run_with(
            &rules,
            json!({"metadata": {"task": "code"}}),
            "Translate this into German",
        );
        assert_eq!(d.classification.source.as_str(), "explicit");
        assert!(d.classification.model.is_none());
        // Below min_score the model's label is not the task.
        let strict = model_rules(1.0);
        let d = run_with(&strict, json!({}), "hmm");
        assert_eq!(
            (d.classification.source.as_str(), d.rule.as_str()),
            ("none", "default")
        );
        assert!(d.classification.model.as_ref().unwrap().score < 1.0);
    }

    #[test]
    fn the_classifier_section_is_checked() {
        let mut doc = json!({
            "version": 1,
            "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
            "models": {"fast": {"provider": "p", "model": "f"}},
            "classifier": {"model": "kv:other", "min_score": 2.0},
            "default": "fast"
        });
        let errors = parse_rules(&doc.to_string()).unwrap_err();
        assert!(
            errors.iter().any(|e| e.path == "classifier.min_score"),
            "{errors:?}"
        );
        doc["classifier"] = json!({"model": "other"});
        let errors = parse_rules(&doc.to_string()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.path == "classifier.model" && e.message.contains("builtin")),
            "{errors:?}"
        );
        doc["classifier"] = json!({"model": "kv:"});
        assert!(parse_rules(&doc.to_string()).is_err());
        doc["classifier"] = json!({"model": "kv:models/tasks-v2"});
        let rules = parse_rules(&doc.to_string()).unwrap();
        assert_eq!(
            rules.task_model.unwrap().kv_key.as_deref(),
            Some("models/tasks-v2")
        );
        doc["classifier"] = json!({"threshold": 0.5});
        let errors = parse_rules(&doc.to_string()).unwrap_err();
        assert!(
            errors.iter().any(|e| e.path.starts_with("classifier")),
            "{errors:?}"
        );
        doc["classifier"] = json!({});
        assert!(parse_rules(&doc.to_string()).unwrap().task_model.is_some());
    }

    #[test]
    fn an_unsure_model_asks_the_cascade_whose_label_routes() {
        let mut doc: Value = json!({
            "version": 1,
            "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
            "models": {"fast": {"provider": "p", "model": "f"}, "lingo": {"provider": "p", "model": "l"}},
            "tasks": {"code": {"keywords": ["refactor"]}},
            "classifier": {"min_score": 0.5, "cascade": {"model": "fast", "below": 0.9}},
            "routes": [{"name": "translate", "when": {"task": "translation"}, "then": "lingo"}],
            "default": "fast"
        });
        let rules = parse_rules(&doc.to_string()).unwrap();
        let vague = "can you help with this";
        let d = run_with(&rules, json!({}), vague);
        assert!(
            wants_cascade(&rules, &d).is_some(),
            "{:?}",
            d.classification
        );
        let mut facts = json!({});
        let d = decide_with(
            &rules,
            "auto",
            &mut facts,
            &texts(vague),
            &SeededRandom::new(1),
            Trace::Off,
            Some("translation"),
        )
        .unwrap();
        assert_eq!(
            (d.classification.source.as_str(), d.rule.as_str()),
            ("cascade", "translate")
        );
        assert_eq!(facts["task"], "translation");
        // A rule's task is never second-guessed.
        let d = run_with(&rules, json!({}), "refactor it");
        assert!(wants_cascade(&rules, &d).is_none());
        let mut facts = json!({});
        let d = decide_with(
            &rules,
            "auto",
            &mut facts,
            &texts("refactor it"),
            &SeededRandom::new(1),
            Trace::Off,
            Some("translation"),
        )
        .unwrap();
        assert_eq!(d.classification.task.as_deref(), Some("code"));
        // A sure model is not second-guessed either.
        let d = run_with(
            &rules,
            json!({}),
            "Translate this into German: 'The parcel arrives on Monday.'",
        );
        assert!(d.classification.model.as_ref().unwrap().score >= 0.9);
        assert!(wants_cascade(&rules, &d).is_none());
        // The cascade names a model of the rules.
        doc["classifier"]["cascade"]["model"] = json!("nope");
        let errors = parse_rules(&doc.to_string()).unwrap_err();
        assert!(
            errors.iter().any(|e| e.path == "classifier.cascade.model"),
            "{errors:?}"
        );
    }
}
