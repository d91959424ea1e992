//! Choosing where a request goes: `model: "auto"` walks the routes in order (first match wins,
//! then the default); a model named in the rules is served directly.

use crate::error::{ApiError, ErrorCode};
use crate::rules::{Rules, Target};
use serde_json::Value;

/// The rule name recorded when the caller named a model of the rules directly.
pub const EXPLICIT_RULE: &str = "explicit";
/// The rule name recorded when no route matched.
pub const DEFAULT_RULE: &str = "default";
/// The requested model that asks the rules to choose.
pub const AUTO: &str = "auto";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The route that matched, `default`, or `explicit`.
    pub rule: String,
    pub target: Target,
}

pub fn decide(rules: &Rules, requested_model: &str, facts: &Value) -> Result<Decision, ApiError> {
    if requested_model == AUTO {
        let decision = match rules.routes.iter().find(|r| r.when.matches(facts)) {
            Some(route) => Decision {
                rule: route.name.clone(),
                target: route.then.clone(),
            },
            None => Decision {
                rule: DEFAULT_RULE.into(),
                target: rules.default.clone(),
            },
        };
        return Ok(decision);
    }
    if rules.models.contains_key(requested_model) {
        return Ok(Decision {
            rule: EXPLICIT_RULE.into(),
            target: Target::Model(requested_model.to_string()),
        });
    }
    let names: Vec<&str> = std::iter::once(AUTO)
        .chain(rules.models.keys().map(String::as_str))
        .collect();
    Err(ApiError::new(
        ErrorCode::ModelNotFound,
        format!(
            "model \"{requested_model}\" is not known here; use one of: {}",
            names.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_rules;
    use serde_json::json;

    fn rules() -> Rules {
        parse_rules(
            &json!({
                "version": 1,
                "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
                "models": {"fast": {"provider": "p", "model": "f"}, "strong": {"provider": "p", "model": "s"}},
                "routes": [
                    {"name": "paid", "when": {"metadata.plan": {"$in": ["pro", "team"]}}, "then": "strong"},
                    {"name": "faq", "when": {"task": "faq"}, "then": "fast"}
                ],
                "default": "fast"
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn auto_takes_the_first_matching_route_then_the_default() {
        let r = rules();
        let table = [
            (
                json!({"metadata": {"plan": "pro"}, "task": "faq"}),
                "paid",
                "strong",
            ),
            (
                json!({"metadata": {"plan": "free"}, "task": "faq"}),
                "faq",
                "fast",
            ),
            (json!({"metadata": {}}), "default", "fast"),
        ];
        for (facts, rule, model) in table {
            let d = decide(&r, "auto", &facts).unwrap();
            assert_eq!(
                (d.rule.as_str(), d.target),
                (rule, Target::Model(model.into())),
                "{facts}"
            );
        }
    }

    #[test]
    fn named_models_and_unknown_ones() {
        let r = rules();
        let d = decide(&r, "strong", &json!({"metadata": {"plan": "free"}})).unwrap();
        assert_eq!(
            d,
            Decision {
                rule: "explicit".into(),
                target: Target::Model("strong".into())
            }
        );
        let e = decide(&r, "gpt-5", &json!({})).unwrap_err();
        assert_eq!(e.code, ErrorCode::ModelNotFound);
        assert!(e.message.contains("auto, fast, strong"), "{}", e.message);
    }
}
