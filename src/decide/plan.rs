//! Turning a routing tree into an ordered attempt plan: each attempt names the model, its provider,
//! the provider's model id, the request overrides, its retry policy and timeout, which failures move
//! on to the next attempt, and why it is there. Load-balancing draws from an injected random source
//! so tests are deterministic.

use crate::ports::Random;
use crate::rules::{FallbackOn, RetryPolicy, Rules, Settings, Target};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The model's name in the rules.
    pub target: String,
    pub provider: String,
    /// The provider's model id (after any `model` override).
    pub model_id: String,
    /// Request parameters set on the provider request.
    pub overrides: Map<String, Value>,
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    /// Which failures of this attempt move on to the next one.
    pub fallback_on: FallbackOn,
    /// Where in the tree it came from.
    pub why: String,
}

#[derive(Clone)]
struct Inherited {
    retry: RetryPolicy,
    timeout_ms: u64,
    overrides: Map<String, Value>,
    fallback_on: FallbackOn,
}

impl Inherited {
    fn with(&self, s: &Settings) -> Inherited {
        let mut next = self.clone();
        if let Some(r) = &s.retry {
            next.retry = r.clone();
        }
        if let Some(t) = s.timeout_ms {
            next.timeout_ms = t;
        }
        for (k, v) in &s.overrides {
            next.overrides.insert(k.clone(), v.clone());
        }
        next
    }
}

/// The attempts for `target`, in order. `origin` names where the target came from (a route).
pub fn plan(
    rules: &Rules,
    target: &Target,
    facts: &Value,
    rng: &dyn Random,
    origin: &str,
) -> Vec<Attempt> {
    let base = Inherited {
        retry: rules.defaults.retry.clone(),
        timeout_ms: rules.defaults.timeout_ms,
        overrides: Map::new(),
        fallback_on: FallbackOn::Default,
    };
    let mut out = Vec::new();
    walk(
        rules,
        target,
        &base,
        facts,
        rng,
        origin.to_string(),
        &mut out,
    );
    out
}

fn walk(
    rules: &Rules,
    target: &Target,
    inherited: &Inherited,
    facts: &Value,
    rng: &dyn Random,
    why: String,
    out: &mut Vec<Attempt>,
) {
    match target {
        Target::Model { model, settings } => {
            let here = inherited.with(settings);
            let Some((m, provider)) = rules.resolve(model) else {
                return;
            };
            let mut overrides = here.overrides;
            let model_id = match overrides.remove("model") {
                Some(Value::String(id)) => id,
                _ => m.model.clone(),
            };
            out.push(Attempt {
                target: model.clone(),
                provider: provider.name.clone(),
                model_id,
                overrides,
                retry: here.retry,
                timeout_ms: here.timeout_ms,
                fallback_on: here.fallback_on,
                why,
            });
        }
        Target::Fallback {
            targets,
            on,
            settings,
        } => {
            let mut here = inherited.with(settings);
            here.fallback_on = on.clone();
            for (i, t) in targets.iter().enumerate() {
                walk(
                    rules,
                    t,
                    &here,
                    facts,
                    rng,
                    format!("{why} > fallback[{i}]"),
                    out,
                );
            }
        }
        Target::LoadBalance { choices, settings } => {
            let here = inherited.with(settings);
            let total: f64 = choices.iter().map(|(_, w)| w).sum();
            let draw = rng.next_f64() * total;
            let mut acc = 0.0;
            let mut pick = choices.len().saturating_sub(1);
            for (i, (_, w)) in choices.iter().enumerate() {
                acc += w;
                if draw < acc {
                    pick = i;
                    break;
                }
            }
            if let Some((t, w)) = choices.get(pick) {
                let why = format!("{why} > loadbalance[{pick}] (weight {w} of {total})");
                walk(rules, t, &here, facts, rng, why, out);
            }
        }
        Target::Conditional {
            branches,
            default,
            settings,
        } => {
            let here = inherited.with(settings);
            match branches.iter().position(|(c, _)| c.matches(facts)) {
                Some(i) => walk(
                    rules,
                    &branches[i].1,
                    &here,
                    facts,
                    rng,
                    format!("{why} > conditional[{i}]"),
                    out,
                ),
                None => walk(
                    rules,
                    default,
                    &here,
                    facts,
                    rng,
                    format!("{why} > conditional default"),
                    out,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededRandom;
    use crate::rules::parse_rules;
    use serde_json::json;

    fn rules(default: Value) -> Rules {
        parse_rules(
            &json!({
                "version": 1,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"},
                              "q": {"kind": "openai_compatible", "base_url": "https://q.example/v1"}},
                "models": {"a": {"provider": "p", "model": "model-a"}, "b": {"provider": "q", "model": "model-b"},
                           "c": {"provider": "q", "model": "model-c"}},
                "default": default,
                "defaults": {"retry": {"attempts": 1}, "timeout_ms": 5000}
            })
            .to_string(),
        )
        .unwrap()
    }

    fn targets(p: &[Attempt]) -> Vec<&str> {
        p.iter().map(|a| a.target.as_str()).collect()
    }

    #[test]
    fn fallback_nesting_overrides_and_inheritance() {
        let r = rules(json!({
            "fallback": [
                {"model": "a", "override": {"max_tokens": 100, "model": "model-a-mini"}, "timeout_ms": 1000},
                {"fallback": ["b", "c"], "on_status": [429], "retry": {"attempts": 3}}
            ],
            "override": {"temperature": 0.5}
        }));
        let p = plan(&r, &r.default, &json!({}), &SeededRandom::new(1), "default");
        assert_eq!(targets(&p), ["a", "b", "c"]);
        assert_eq!(p[0].model_id, "model-a-mini");
        assert_eq!(
            p[0].overrides,
            json!({"max_tokens": 100, "temperature": 0.5})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!((p[0].timeout_ms, p[0].retry.attempts), (1000, 1));
        assert_eq!(p[0].fallback_on, FallbackOn::Default);
        assert_eq!((p[1].timeout_ms, p[1].retry.attempts), (5000, 3));
        assert_eq!(p[1].fallback_on, FallbackOn::Statuses(vec![429]));
        assert_eq!(p[2].why, "default > fallback[1] > fallback[1]");
        assert_eq!(p[1].provider, "q");
    }

    #[test]
    fn loadbalance_follows_weights() {
        let r = rules(
            json!({"loadbalance": [{"target": "a", "weight": 3}, {"target": "b", "weight": 1}]}),
        );
        let rng = SeededRandom::new(42);
        let n = 20_000;
        let mut a = 0;
        for _ in 0..n {
            let p = plan(&r, &r.default, &json!({}), &rng, "d");
            assert_eq!(p.len(), 1);
            if p[0].target == "a" {
                a += 1;
            }
        }
        let share = a as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.015, "share of a: {share}");
        // The same seed, the same draws.
        let first: Vec<String> = (0..10)
            .map(|_| {
                plan(&r, &r.default, &json!({}), &SeededRandom::new(7), "d")[0]
                    .target
                    .clone()
            })
            .collect();
        assert!(first.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn conditional_branches_and_default() {
        let r = rules(
            json!({"conditional": [{"when": {"metadata.plan": "pro"}, "then": "a"},
                                              {"when": {"stream": true}, "then": {"fallback": ["b", "a"]}}],
                             "default": "c"}),
        );
        let cases = [
            (
                json!({"metadata": {"plan": "pro"}, "stream": true}),
                vec!["a"],
            ),
            (json!({"metadata": {}, "stream": true}), vec!["b", "a"]),
            (json!({"metadata": {}, "stream": false}), vec!["c"]),
        ];
        for (facts, want) in cases {
            let p = plan(&r, &r.default, &facts, &SeededRandom::new(1), "d");
            assert_eq!(targets(&p), want, "{facts}");
        }
    }

    #[test]
    fn seeded_random_is_uniform_enough() {
        let rng = SeededRandom::new(3);
        let xs: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
