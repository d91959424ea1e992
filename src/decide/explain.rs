//! Explain: what the router would do with a request, without calling any provider. The same
//! function serves `POST /v1/router/explain` and (later) the CLI: the facts, each task's score and
//! evidence, each route checked and the clauses that failed, the route chosen, and the attempt plan.

use crate::chat::request::ChatRequest;
use crate::decide::facts::derive;
use crate::decide::route::{decide, wants_cascade, Trace};
use crate::error::ApiError;
use crate::ports::Random;
use crate::rules::Rules;
use serde_json::{json, Value};

pub fn explain(
    rules: &Rules,
    chat: &ChatRequest,
    headers: &[(String, String)],
    rng: &dyn Random,
) -> Result<Value, ApiError> {
    let mut derived = derive(chat, headers);
    let decision = decide(
        rules,
        &chat.model,
        &mut derived.facts,
        &derived.texts,
        rng,
        Trace::On,
    )?;
    Ok(json!({
        "object": "router.explanation",
        "rules_version": rules.version,
        "requested_model": chat.model,
        "facts": derived.facts,
        "classification": decision.classification,
        "routes_checked": decision.checked,
        "rule": decision.rule,
        "plan": decision.plan,
        "skipped": decision.skipped,
        // Explain calls no provider: it says whether a request would ask the cascade model.
        "cascade": wants_cascade(rules, &decision).map(|c| json!({"would_ask": c.model, "below": c.below})),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::request::parse_chat;
    use crate::http::Body;
    use crate::ports::SeededRandom;
    use crate::rules::parse_rules;

    #[test]
    fn explains_the_whole_decision() {
        let rules = parse_rules(
            &json!({
                "version": 9,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                "models": {"fast": {"provider": "p", "model": "f"}, "strong": {"provider": "p", "model": "s"}},
                "tasks": {"code": {"keywords": ["refactor"], "regex": ["```"]}},
                "routes": [
                    {"name": "paid", "when": {"metadata.plan": "pro"}, "then": "strong"},
                    {"name": "code", "when": {"task": "code"}, "then": {"fallback": ["strong", "fast"]}}
                ],
                "default": "fast"
            })
            .to_string(),
        )
        .unwrap();
        let body = json!({"model": "auto", "messages": [{"role": "user", "content": "refactor ```x```"}],
                          "metadata": {"plan": "free"}});
        let chat = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20).unwrap();
        let out = explain(&rules, &chat, &[], &SeededRandom::new(1)).unwrap();
        assert_eq!(out["rules_version"], 9);
        assert_eq!(out["rule"], "code");
        assert_eq!(out["facts"]["task"], "code");
        assert_eq!(out["facts"]["task_score"], 2.0);
        assert_eq!(
            out["classification"]["scores"][0]["evidence"],
            json!(["keyword \"refactor\"", "regex ```"])
        );
        assert_eq!(
            out["routes_checked"][0],
            json!({"route": "paid", "matched": false,
                                                   "failed": ["metadata.plan = \"pro\" (value: \"free\")"]})
        );
        assert_eq!(out["routes_checked"][1]["matched"], true);
        let plan = out["plan"].as_array().unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0]["target"], "strong");
        assert_eq!(plan[0]["why"], "routes.code > fallback[0]");
        assert_eq!(plan[1]["model_id"], "f");
        assert_eq!(plan[0]["retry"]["attempts"], 0);
        assert_eq!(plan[0]["timeout_ms"], 60_000);
    }
}
