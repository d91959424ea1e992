//! The rules engine through its public API: every validation error of targets and tasks (with its
//! path), Portkey configs meaning the same as native targets, and the published JSON Schema.
#![expect(
    clippy::panic,
    clippy::unwrap_used,
    reason = "test helpers fail loudly"
)]

use serde_json::{json, Value};
use taskrouter::decide::classify::Texts;
use taskrouter::decide::plan::{plan, Attempt};
use taskrouter::decide::route::{decide, Trace};
use taskrouter::ports::SeededRandom;
use taskrouter::rules::{parse_rules, rules_schema, FallbackOn, Rules};

fn doc(default: Value) -> Value {
    json!({
        "version": 1,
        "providers": {
            "openai": {"kind": "openai", "base_url": "https://api.openai.com/v1", "api_key_secret": "OPENAI_API_KEY"},
            "groq": {"kind": "openai_compatible", "base_url": "https://api.groq.com/openai/v1", "api_key_secret": "GROQ_API_KEY"}
        },
        "models": {
            "gpt4o": {"provider": "openai", "model": "gpt-4o", "price_per_mtok": {"input": 2.5, "output": 10}},
            "llama": {"provider": "groq", "model": "llama-3.1-8b-instant"}
        },
        "default": default
    })
}

fn errors(d: &Value) -> Vec<String> {
    match parse_rules(&d.to_string()) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn assert_errors(d: &Value, wanted: &[&str]) {
    let got = errors(d);
    for w in wanted {
        assert!(
            got.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {got:#?}"
        );
    }
}

fn ok(d: &Value) -> Rules {
    parse_rules(&d.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The attempts of the rules' default target for a request with no facts (seed 1).
fn default_plan(rules: &Rules) -> Vec<Attempt> {
    plan(
        rules,
        &rules.default,
        &json!({}),
        &SeededRandom::new(1),
        "default",
    )
}

#[test]
fn target_errors_name_their_paths() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"fallback": []}),
            vec!["default.fallback: must list at least one target"],
        ),
        (
            json!({"fallback": ["gpt4o", "nope"]}),
            vec!["default.fallback[1]: unknown model \"nope\""],
        ),
        (
            json!({"loadbalance": [{"target": "gpt4o", "weight": 0}, {"target": "llama", "weight": -2}]}),
            vec![
                "default.loadbalance[0].weight: weights must be positive",
                "default.loadbalance[1].weight: weights must be positive",
            ],
        ),
        (
            json!({"loadbalance": []}),
            vec!["default.loadbalance: must list at least one target"],
        ),
        (
            json!({"model": "gpt4o", "override": {"messages": []}}),
            vec!["default.override.messages: cannot be overridden"],
        ),
        (
            json!({"model": "gpt4o", "override": {"model": 3}}),
            vec!["default.override.model: must be the provider's model id"],
        ),
        (
            json!({"model": "gpt4o", "timeout_ms": 0}),
            vec!["default.timeout_ms: must be between 1"],
        ),
        (
            json!({"model": "gpt4o", "retry": {"attempts": 9}}),
            vec!["default.retry.attempts: at most 5 retries"],
        ),
        (
            json!({"fallback": ["gpt4o"], "on_status": [429, 999]}),
            vec!["default.on_status: 999 is not an HTTP status"],
        ),
        (
            json!({"model": "gpt4o", "weight": 1}),
            vec!["default.weight: unknown field `weight`"],
        ),
        (
            json!({"conditional": [{"when": {"x": 1}, "then": "gpt4o"}]}),
            vec!["default: missing field `default`"],
        ),
        (
            json!({"conditional": [{"when": {"x": {"$bogus": 1}}, "then": "zzz"}], "default": "llama"}),
            vec![
                "default.conditional[0].when.x.$bogus: unknown operator",
                "default.conditional[0].then: unknown model \"zzz\"",
            ],
        ),
        (
            json!({"weird": 1}),
            vec!["default: not a target (keys: weird)"],
        ),
        (
            json!(42),
            vec!["default: a target is a model name or an object"],
        ),
    ];
    for (target, wanted) in cases {
        assert_errors(&doc(target), &wanted);
    }
    let mut deep = json!("gpt4o");
    for _ in 0..10 {
        deep = json!({"fallback": [deep]});
    }
    assert_errors(&doc(deep), &["default.fallback[0].fallback[0].fallback[0].fallback[0].fallback[0].fallback[0].fallback[0].fallback[0].fallback[0]: targets nest deeper than 8"]);
}

#[test]
fn task_and_defaults_errors() {
    let mut d = doc(json!("gpt4o"));
    d["tasks"] = json!({
        "empty": {},
        "bad_regex": {"regex": ["(unclosed"]},
        "gpt4o": {"keywords": ["x"]},
        "blank": {"keywords": [" "]},
        "scored": {"keywords": ["y"], "min_score": 0},
        "scoped": {"keywords": ["y"], "scope": "everything"},
        "cond": {"when": {"a": {"$nope": 1}}}
    });
    d["defaults"] = json!({"retry": {"attempts": 6, "on_status": []}, "timeout_ms": 0});
    d["routes"] = json!([{"name": "default", "then": "gpt4o"}]);
    assert_errors(
        &d,
        &[
            "tasks.empty: recognises nothing",
            "tasks.bad_regex.regex[0]: invalid regex",
            "tasks.gpt4o: task names must differ from model names",
            "tasks.blank.keywords[0]: must not be empty",
            "tasks.scored.min_score: must be a positive number",
            "tasks.scoped.scope: unknown variant `everything`",
            "tasks.cond.when.a.$nope: unknown operator",
            "defaults.retry.attempts: at most 5 retries",
            "defaults.retry.on_status: must list at least one status",
            "defaults.timeout_ms: must be between 1 and 600000 ms",
            "routes[0].name: \"default\" is reserved",
        ],
    );
}

#[test]
fn defaults_reach_every_attempt_unless_overridden() {
    let mut d = doc(
        json!({"fallback": ["gpt4o", {"model": "llama", "retry": {"attempts": 1}, "timeout_ms": 900}]}),
    );
    d["defaults"] =
        json!({"retry": {"attempts": 2, "on_status": [429], "backoff_ms": 50}, "timeout_ms": 1234});
    let rules = ok(&d);
    let p = default_plan(&rules);
    assert_eq!(
        (
            p[0].retry.attempts,
            p[0].retry.on_status.clone(),
            p[0].timeout_ms
        ),
        (2, vec![429], 1234)
    );
    // A retry object replaces the inherited policy; what it omits comes from the document defaults.
    assert_eq!(
        (
            p[1].retry.attempts,
            p[1].retry.on_status.clone(),
            p[1].retry.backoff_ms
        ),
        (1, vec![429], 50)
    );
    assert_eq!(p[1].timeout_ms, 900);
}

#[test]
fn portkey_errors() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "api_key": "sk-x", "override_params": {"model": "gpt-4o"}}]}),
            vec!["default.targets[0].api_key: keys are never put in rules"],
        ),
        (
            json!({"strategy": {"mode": "roundrobin"}, "targets": [{"provider": "openai", "override_params": {"model": "gpt-4o"}}]}),
            vec!["default.strategy.mode: unknown mode \"roundrobin\""],
        ),
        (
            json!({"strategy": {"mode": "fallback"}}),
            vec!["default.targets: a strategy needs targets"],
        ),
        (
            json!({"targets": []}),
            vec!["default.strategy: targets need a strategy"],
        ),
        (
            json!({"provider": "openai"}),
            vec!["default.override_params.model: a Portkey target needs override_params.model"],
        ),
        (
            json!({"provider": "anthropic", "override_params": {"model": "claude"}}),
            vec!["default: unknown provider \"anthropic\""],
        ),
        (
            json!({"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": "pro"}, "then": "nobody"}]},
                   "targets": [{"name": "a", "provider": "openai", "override_params": {"model": "gpt-4o"}}]}),
            vec![
                "default.strategy.conditions[0].then: no target named \"nobody\"",
                "default.strategy.default: a conditional strategy needs a default",
            ],
        ),
        (
            json!({"provider": "openai", "override_params": {"model": "gpt-4o"}, "retry": {"attempts": 1, "count": 2}}),
            vec!["default.retry: set attempts or its older spelling count"],
        ),
        (
            json!({"provider": "openai", "override_params": {"model": "gpt-4o"}, "cache": {"mode": "simple"}}),
            vec!["default.cache: unknown field `cache`"],
        ),
    ];
    for (target, wanted) in cases {
        assert_errors(&doc(target), &wanted);
    }
}

#[test]
fn portkey_leaves_map_to_models() {
    let rules = ok(&doc(json!({"strategy": {"mode": "fallback"}, "targets": [
        {"virtual_key": "openai", "override_params": {"model": "gpt-4o", "max_tokens": 50}},
        {"override_params": {"model": "@groq/mixtral-8x7b"}}
    ]})));
    let p = default_plan(&rules);
    assert_eq!(
        p[0].target, "gpt4o",
        "a declared (provider, model id) pair reuses its model entry and price"
    );
    assert_eq!(
        p[0].overrides,
        json!({"max_tokens": 50}).as_object().cloned().unwrap()
    );
    assert_eq!(
        (
            p[1].target.as_str(),
            p[1].provider.as_str(),
            p[1].model_id.as_str()
        ),
        ("groq/mixtral-8x7b", "groq", "mixtral-8x7b")
    );
    assert!(rules.models["groq/mixtral-8x7b"].price.is_none());
    assert_eq!(
        p[0].fallback_on,
        FallbackOn::AnyFailure,
        "Portkey falls back on any non-2xx by default"
    );
}

/// What an attempt does: target, model id, retries, timeout, fallback condition, overrides.
type Behaviour = (String, String, u32, u64, FallbackOn, Value);

/// Plans for the same facts and the same random draws.
fn plans(rules: &Rules, facts: &Value, seeds: std::ops::Range<u64>) -> Vec<Vec<Behaviour>> {
    seeds
        .map(|seed| {
            plan(
                rules,
                &rules.default,
                facts,
                &SeededRandom::new(seed),
                "default",
            )
            .into_iter()
            .map(|a| {
                (
                    a.target,
                    a.model_id,
                    a.retry.attempts,
                    a.timeout_ms,
                    a.fallback_on,
                    Value::Object(a.overrides),
                )
            })
            .collect()
        })
        .collect()
}

#[test]
fn portkey_configs_mean_the_same_as_native_targets() {
    let leaf = |p: &str, m: &str| json!({"provider": p, "override_params": {"model": m}});
    let portkey = json!({
        "strategy": {"mode": "conditional",
                     "conditions": [{"query": {"metadata.plan": {"$eq": "paid"}}, "then": "paid"}],
                     "default": "free"},
        "retry": {"attempts": 3, "on_status_codes": [429, 503]},
        "request_timeout": 8000,
        "override_params": {"temperature": 0.2},
        "targets": [
            {"name": "paid", "strategy": {"mode": "fallback", "on_status_codes": [429, 500]},
             "targets": [leaf("openai", "gpt-4o"), leaf("groq", "llama-3.1-8b-instant")]},
            {"name": "free", "strategy": {"mode": "loadbalance"},
             "targets": [{"provider": "groq", "override_params": {"model": "llama-3.1-8b-instant"}, "weight": 0.7},
                         {"provider": "openai", "override_params": {"model": "gpt-4o", "max_tokens": 256}, "weight": 0.3}]},
            {"name": "single", "strategy": {"mode": "single"}, "targets": [leaf("openai", "gpt-4o")]}
        ]
    });
    let native = json!({
        "conditional": [{"when": {"metadata.plan": {"$eq": "paid"}}, "then": {"fallback": ["gpt4o", "llama"], "on_status": [429, 500]}}],
        "default": {"loadbalance": [{"target": "llama", "weight": 0.7},
                                    {"target": {"model": "gpt4o", "override": {"max_tokens": 256}}, "weight": 0.3}]},
        "retry": {"attempts": 3, "on_status": [429, 503], "respect_retry_after": false},
        "timeout_ms": 8000,
        "override": {"temperature": 0.2}
    });
    let (p, n) = (ok(&doc(portkey)), ok(&doc(native)));
    for facts in [
        json!({"metadata": {"plan": "paid"}}),
        json!({"metadata": {"plan": "free"}}),
        json!({}),
    ] {
        assert_eq!(
            plans(&p, &facts, 1..200),
            plans(&n, &facts, 1..200),
            "{facts}"
        );
    }
}

#[test]
fn loadbalance_nested_in_fallback_draws_per_request() {
    let rules = ok(&doc(
        json!({"fallback": [{"loadbalance": [{"target": "gpt4o", "weight": 1}, {"target": "llama", "weight": 1}]}, "gpt4o"]}),
    ));
    let firsts: std::collections::HashSet<String> = (1..50)
        .map(|s| {
            plan(
                &rules,
                &rules.default,
                &json!({}),
                &SeededRandom::new(s),
                "d",
            )[0]
            .target
            .clone()
        })
        .collect();
    assert_eq!(firsts.len(), 2);
}

#[test]
fn routing_by_metadata_task_and_classifier() {
    let mut d = doc(json!("llama"));
    d["tasks"] = json!({"code": {"keywords": ["stack trace", "refactor"], "regex": ["```"]},
                        "translation": {"regex": ["(?i)\\btranslate\\b.*\\b(into|to)\\b"]}});
    d["routes"] = json!([
        {"name": "code", "when": {"task": "code", "task_score": {"$gte": 2}}, "then": "gpt4o"},
        {"name": "long", "when": {"estimated_tokens": {"$gt": 1000}}, "then": "gpt4o"}
    ]);
    let rules = ok(&d);
    let route = |text: &str| {
        let mut facts = json!({"metadata": {}, "estimated_tokens": taskrouter::decide::facts::estimate_tokens(text)});
        let texts = Texts {
            last_user: text.into(),
            system: String::new(),
            conversation: text.into(),
        };
        decide(
            &rules,
            "auto",
            &mut facts,
            &texts,
            &SeededRandom::new(1),
            Trace::Off,
        )
        .unwrap()
        .rule
    };
    assert_eq!(route("refactor this stack trace"), "code");
    assert_eq!(
        route("refactor this"),
        "default",
        "score 1 is below the route's threshold"
    );
    assert_eq!(route(&"word ".repeat(1000)), "long");
}

#[test]
fn the_published_schema_is_generated_from_the_types() {
    let generated = rules_schema();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.schema.json");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        published.trim_end(),
        generated.trim_end(),
        "docs/rules.schema.json is stale: run UPDATE_SCHEMA=1 cargo test"
    );
    let schema: Value = serde_json::from_str(&generated).unwrap();
    let mut props: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    props.sort_unstable();
    let mut top = taskrouter::rules::TOP_LEVEL_FIELDS.to_vec();
    top.sort_unstable();
    assert_eq!(
        props, top,
        "the hand-checked top-level fields match the schema"
    );
    assert!(generated.contains("\"Target\""));
}

#[test]
fn the_bundled_default_rules_validate() {
    ok(&serde_json::from_str(include_str!("../rules/default.json")).unwrap());
}

/// The first JSON block of a Markdown document.
fn first_json_block(doc: &str) -> Value {
    let start = doc.find("```json\n").map(|i| i + 8).unwrap();
    let end = start + doc[start..].find("\n```").unwrap();
    serde_json::from_str(&doc[start..end]).unwrap()
}

#[test]
fn the_examples_in_docs_validate() {
    let rules = ok(&first_json_block(include_str!("../docs/rules.md")));
    assert_eq!(rules.routes.len(), 3);
    let portkey = ok(&first_json_block(include_str!("../docs/portkey.md")));
    let p = plan(
        &portkey,
        &portkey.default,
        &json!({}),
        &SeededRandom::new(1),
        "default",
    );
    assert_eq!(
        p.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
        ["gpt4o", "groq/llama-3.1-8b-instant"]
    );
    assert_eq!((p[0].retry.attempts, p[0].timeout_ms), (2, 20000));
}
