//! Conditions over request facts: MongoDB-style operators on dotted paths, parsed once from JSON
//! into a compiled tree (regexes compiled here, at validation), then evaluated per request.
//!
//! Semantics of a missing path (documented in docs/rules.md, pinned by tests):
//! `$eq`/bare value: true only for `null`; `$ne`: true unless the operand is `null`;
//! `$in`: true only if the list holds `null`; `$nin`: true unless the list holds `null`;
//! `$gt $gte $lt $lte $regex $contains`: false; `$exists: false`: true.
//! Several operators in one object must all hold. A field that is an array matches `$eq`/`$in` when
//! the array itself or any element matches (as MongoDB does).

use regex_automata::meta::Regex;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Deepest nesting of `$and`/`$or`/`$not` accepted, so a hostile document cannot blow the stack.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field {
        path: Vec<String>,
        op: FieldOp,
        /// The clause as written, for explain: `metadata.plan $in ["pro","team"]`.
        text: String,
    },
}

#[derive(Debug, Clone)]
pub enum FieldOp {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    Regex(Regex),
    Exists(bool),
    Contains(Value),
}

/// A problem in a condition, with the path inside the rules document where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub path: String,
    pub message: String,
}

impl Condition {
    /// Parse a `when` object. `at` is the document path of `value`, used in every error.
    /// All errors are collected, not only the first.
    pub fn parse(value: &Value, at: &str) -> Result<Condition, Vec<ConditionError>> {
        let mut errors = Vec::new();
        let cond = parse_object(value, at, 0, &mut errors);
        if errors.is_empty() {
            Ok(cond)
        } else {
            Err(errors)
        }
    }

    /// Does this condition hold over `facts`?
    pub fn matches(&self, facts: &Value) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.matches(facts)),
            Condition::Any(list) => list.iter().any(|c| c.matches(facts)),
            Condition::Not(inner) => !inner.matches(facts),
            Condition::Field { path, op, .. } => op.holds(lookup(facts, path)),
        }
    }

    /// Like `matches`, and when it does not hold, say which clauses failed (with the values seen).
    pub fn explain(&self, facts: &Value, failed: &mut Vec<String>) -> bool {
        match self {
            // No short-circuit: every failing clause is reported.
            Condition::All(list) => {
                let mut ok = true;
                for c in list {
                    ok &= c.explain(facts, failed);
                }
                ok
            }
            Condition::Any(list) => {
                let mut sub = Vec::new();
                let mut ok = false;
                for c in list {
                    ok |= c.explain(facts, &mut sub);
                }
                if !ok {
                    failed.push(format!("none of $or held: {}", sub.join("; ")));
                }
                ok
            }
            Condition::Not(inner) => {
                let held = inner.matches(facts);
                if held {
                    failed.push("$not: the inner condition held".into());
                }
                !held
            }
            Condition::Field { path, op, text } => {
                let value = lookup(facts, path);
                let ok = op.holds(value);
                if !ok {
                    let seen =
                        value.map_or_else(|| "missing".to_string(), |v| short(&v.to_string()));
                    failed.push(format!("{text} (value: {seen})"));
                }
                ok
            }
        }
    }
}

/// At most 80 characters of a value, for traces.
fn short(s: &str) -> String {
    if s.chars().count() <= 80 {
        return s.to_string();
    }
    let cut: String = s.chars().take(77).collect();
    format!("{cut}...")
}

/// Follow a dotted path through objects (and array indexes written as numbers).
pub fn lookup<'a>(facts: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = facts;
    for part in path {
        cur = match cur {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn err(errors: &mut Vec<ConditionError>, path: &str, message: impl Into<String>) {
    errors.push(ConditionError {
        path: path.to_string(),
        message: message.into(),
    });
}

fn parse_object(
    value: &Value,
    at: &str,
    depth: usize,
    errors: &mut Vec<ConditionError>,
) -> Condition {
    if depth > MAX_DEPTH {
        err(
            errors,
            at,
            format!("conditions nest deeper than {MAX_DEPTH} levels"),
        );
        return Condition::All(Vec::new());
    }
    let Some(map) = value.as_object() else {
        err(errors, at, "a condition must be a JSON object");
        return Condition::All(Vec::new());
    };
    let mut parts = Vec::with_capacity(map.len());
    for (key, val) in map {
        let here = format!("{at}.{key}");
        match key.as_str() {
            "$and" | "$or" => {
                let Some(items) = val.as_array().filter(|a| !a.is_empty()) else {
                    err(
                        errors,
                        &here,
                        format!("{key} takes a non-empty array of conditions"),
                    );
                    continue;
                };
                let list = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_object(item, &format!("{here}[{i}]"), depth + 1, errors))
                    .collect();
                parts.push(if key == "$and" {
                    Condition::All(list)
                } else {
                    Condition::Any(list)
                });
            }
            "$not" => parts.push(Condition::Not(Box::new(parse_object(
                val,
                &here,
                depth + 1,
                errors,
            )))),
            k if k.starts_with('$') => err(errors, &here, format!("unknown logical operator {k}")),
            field => parse_field(field, val, &here, errors, &mut parts),
        }
    }
    if parts.len() == 1 {
        parts.pop().unwrap_or(Condition::All(Vec::new()))
    } else {
        Condition::All(parts)
    }
}

fn parse_field(
    field: &str,
    val: &Value,
    at: &str,
    errors: &mut Vec<ConditionError>,
    out: &mut Vec<Condition>,
) {
    if field.is_empty() || field.split('.').any(str::is_empty) {
        err(
            errors,
            at,
            format!("\"{field}\" is not a valid dotted path"),
        );
        return;
    }
    let path: Vec<String> = field.split('.').map(str::to_string).collect();
    let ops = match val {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => map,
        other => {
            out.push(Condition::Field {
                path,
                op: FieldOp::Eq(other.clone()),
                text: format!("{field} = {other}"),
            });
            return;
        }
    };
    if ops.keys().any(|k| !k.starts_with('$')) {
        err(
            errors,
            at,
            "mixes operators ($...) with plain keys; write {\"$eq\": {...}} to compare an object",
        );
        return;
    }
    for (name, operand) in ops {
        let here = format!("{at}.{name}");
        if let Some(op) = parse_op(name, operand, &here, errors) {
            out.push(Condition::Field {
                path: path.clone(),
                op,
                text: format!("{field} {name} {operand}"),
            });
        }
    }
}

fn parse_op(
    name: &str,
    operand: &Value,
    at: &str,
    errors: &mut Vec<ConditionError>,
) -> Option<FieldOp> {
    let list = |errors: &mut Vec<ConditionError>| match operand {
        Value::Array(items) => Some(items.clone()),
        _ => {
            err(errors, at, format!("{name} takes an array"));
            None
        }
    };
    let ordered = |errors: &mut Vec<ConditionError>| match operand {
        Value::Number(_) | Value::String(_) => Some(operand.clone()),
        _ => {
            err(errors, at, format!("{name} takes a number or a string"));
            None
        }
    };
    Some(match name {
        "$eq" => FieldOp::Eq(operand.clone()),
        "$ne" => FieldOp::Ne(operand.clone()),
        "$in" => FieldOp::In(list(errors)?),
        "$nin" => FieldOp::Nin(list(errors)?),
        "$gt" => FieldOp::Gt(ordered(errors)?),
        "$gte" => FieldOp::Gte(ordered(errors)?),
        "$lt" => FieldOp::Lt(ordered(errors)?),
        "$lte" => FieldOp::Lte(ordered(errors)?),
        "$contains" => FieldOp::Contains(operand.clone()),
        "$exists" => match operand {
            Value::Bool(b) => FieldOp::Exists(*b),
            _ => {
                err(errors, at, "$exists takes true or false");
                return None;
            }
        },
        "$regex" => match operand.as_str().map(crate::rules::pattern::compile) {
            Some(Ok(re)) => FieldOp::Regex(re),
            Some(Err(e)) => {
                err(errors, at, format!("invalid regex: {e}"));
                return None;
            }
            None => {
                err(errors, at, "$regex takes a string");
                return None;
            }
        },
        other => {
            err(errors, at, format!("unknown operator {other}"));
            return None;
        }
    })
}

impl FieldOp {
    fn holds(&self, field: Option<&Value>) -> bool {
        let Some(v) = field else {
            return match self {
                FieldOp::Eq(x) => x.is_null(),
                FieldOp::Ne(x) => !x.is_null(),
                FieldOp::In(xs) => xs.iter().any(Value::is_null),
                FieldOp::Nin(xs) => !xs.iter().any(Value::is_null),
                FieldOp::Exists(want) => !want,
                FieldOp::Gt(_)
                | FieldOp::Gte(_)
                | FieldOp::Lt(_)
                | FieldOp::Lte(_)
                | FieldOp::Regex(_)
                | FieldOp::Contains(_) => false,
            };
        };
        match self {
            FieldOp::Eq(x) => equals(v, x),
            FieldOp::Ne(x) => !equals(v, x),
            FieldOp::In(xs) => xs.iter().any(|x| equals(v, x)),
            FieldOp::Nin(xs) => !xs.iter().any(|x| equals(v, x)),
            FieldOp::Gt(x) => compare(v, x) == Some(Ordering::Greater),
            FieldOp::Gte(x) => matches!(compare(v, x), Some(Ordering::Greater | Ordering::Equal)),
            FieldOp::Lt(x) => compare(v, x) == Some(Ordering::Less),
            FieldOp::Lte(x) => matches!(compare(v, x), Some(Ordering::Less | Ordering::Equal)),
            FieldOp::Regex(re) => v.as_str().is_some_and(|s| re.is_match(s)),
            FieldOp::Exists(want) => *want,
            FieldOp::Contains(x) => match (v, x) {
                (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                (Value::Array(items), x) => items.iter().any(|i| scalar_eq(i, x)),
                _ => false,
            },
        }
    }
}

/// Equality with numbers compared by value (1 == 1.0) and arrays matching on any element.
fn equals(field: &Value, operand: &Value) -> bool {
    if scalar_eq(field, operand) {
        return true;
    }
    match field {
        Value::Array(items) if !operand.is_array() => items.iter().any(|i| scalar_eq(i, operand)),
        _ => false,
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Order numbers with numbers and strings with strings; anything else does not compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// An empty fact document, for callers that build facts incrementally.
pub fn empty_facts() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Value {
        json!({
            "metadata": {"plan": "pro", "tier": 3, "tags": ["beta", "eu"], "nested": {"deep": {"x": 1.0}}},
            "model": "auto",
            "stream": false,
            "message_count": 4,
            "empty": null
        })
    }

    fn check(when: Value) -> bool {
        Condition::parse(&when, "when").unwrap().matches(&facts())
    }

    #[test]
    fn operators_on_present_fields() {
        let table = [
            (json!({"metadata.plan": "pro"}), true),
            (json!({"metadata.plan": "free"}), false),
            (json!({"metadata.plan": {"$eq": "pro"}}), true),
            (json!({"metadata.plan": {"$ne": "pro"}}), false),
            (json!({"metadata.plan": {"$in": ["pro", "team"]}}), true),
            (json!({"metadata.plan": {"$nin": ["pro", "team"]}}), false),
            (json!({"metadata.tier": {"$gt": 2}}), true),
            (json!({"metadata.tier": {"$gt": 3}}), false),
            (json!({"metadata.tier": {"$gte": 3}}), true),
            (json!({"metadata.tier": {"$lt": 3}}), false),
            (json!({"metadata.tier": {"$lte": 3.0}}), true),
            (json!({"metadata.tier": 3.0}), true),
            (json!({"metadata.plan": {"$gt": "a"}}), true),
            (json!({"metadata.plan": {"$gt": 1}}), false),
            (json!({"metadata.plan": {"$regex": "^p.o$"}}), true),
            (json!({"metadata.tier": {"$regex": "3"}}), false),
            (json!({"metadata.plan": {"$exists": true}}), true),
            (json!({"metadata.plan": {"$exists": false}}), false),
            (json!({"metadata.plan": {"$contains": "r"}}), true),
            (json!({"metadata.tags": {"$contains": "eu"}}), true),
            (json!({"metadata.tags": {"$contains": "us"}}), false),
            (json!({"metadata.tags": "beta"}), true),
            (json!({"metadata.tags": {"$in": ["x", "eu"]}}), true),
            (json!({"metadata.tags": ["beta", "eu"]}), true),
            (json!({"metadata.tags.1": "eu"}), true),
            (json!({"metadata.nested.deep.x": 1}), true),
            (json!({"metadata": {"$eq": {"plan": "pro"}}}), false),
            (json!({"empty": null}), true),
            (json!({"empty": {"$exists": true}}), true),
            (json!({"stream": false, "message_count": {"$gte": 2}}), true),
        ];
        for (when, want) in table {
            assert_eq!(check(when.clone()), want, "{when}");
        }
    }

    #[test]
    fn operators_on_missing_paths() {
        let table = [
            (json!({"metadata.missing": "x"}), false),
            (json!({"metadata.missing": null}), true),
            (json!({"metadata.missing": {"$ne": "x"}}), true),
            (json!({"metadata.missing": {"$ne": null}}), false),
            (json!({"metadata.missing": {"$in": ["x"]}}), false),
            (json!({"metadata.missing": {"$in": ["x", null]}}), true),
            (json!({"metadata.missing": {"$nin": ["x"]}}), true),
            (json!({"metadata.missing": {"$nin": [null]}}), false),
            (json!({"metadata.missing": {"$gt": 0}}), false),
            (json!({"metadata.missing": {"$gte": 0}}), false),
            (json!({"metadata.missing": {"$lt": 0}}), false),
            (json!({"metadata.missing": {"$lte": 0}}), false),
            (json!({"metadata.missing": {"$regex": ".*"}}), false),
            (json!({"metadata.missing": {"$contains": "x"}}), false),
            (json!({"metadata.missing": {"$exists": false}}), true),
            (json!({"metadata.missing": {"$exists": true}}), false),
            (json!({"model.below.a.string": {"$exists": false}}), true),
        ];
        for (when, want) in table {
            assert_eq!(check(when.clone()), want, "{when}");
        }
    }

    #[test]
    fn logic_and_mixed_operators() {
        let table = [
            (
                json!({"$and": [{"metadata.plan": "pro"}, {"model": "auto"}]}),
                true,
            ),
            (
                json!({"$and": [{"metadata.plan": "pro"}, {"model": "x"}]}),
                false,
            ),
            (
                json!({"$or": [{"metadata.plan": "free"}, {"model": "auto"}]}),
                true,
            ),
            (
                json!({"$or": [{"metadata.plan": "free"}, {"model": "x"}]}),
                false,
            ),
            (json!({"$not": {"metadata.plan": "free"}}), true),
            (json!({"$not": {"$or": [{"metadata.plan": "pro"}]}}), false),
            (json!({"metadata.tier": {"$gt": 1, "$lt": 5}}), true),
            (json!({"metadata.tier": {"$gt": 1, "$lt": 3}}), false),
            (
                json!({"metadata.tier": {"$gt": 1}, "model": "other"}),
                false,
            ),
            (json!({}), true),
        ];
        for (when, want) in table {
            assert_eq!(check(when.clone()), want, "{when}");
        }
    }

    #[test]
    fn errors_name_their_path_and_are_all_reported() {
        let when = json!({
            "a": {"$regexp": "x"},
            "b": {"$regex": "("},
            "c": {"$in": 3},
            "$nor": [],
            "d": {"$gt": true, "plain": 1},
            "$and": []
        });
        let errors = Condition::parse(&when, "routes[0].when").unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(errors.len(), 6, "{errors:?}");
        for want in [
            "routes[0].when.a.$regexp",
            "routes[0].when.b.$regex",
            "routes[0].when.c.$in",
            "routes[0].when.$nor",
            "routes[0].when.d",
            "routes[0].when.$and",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        assert!(errors
            .iter()
            .any(|e| e.message.contains("unknown operator $regexp")));
    }

    #[test]
    fn explain_names_the_failed_clauses() {
        let when = json!({"metadata.plan": {"$in": ["team"]}, "model": "auto", "metadata.x": 1,
                          "$or": [{"stream": true}, {"message_count": {"$gt": 9}}]});
        let c = Condition::parse(&when, "w").unwrap();
        let mut failed = Vec::new();
        assert!(!c.explain(&facts(), &mut failed));
        assert_eq!(
            failed,
            [
                "$or held: stream = true (value: false); message_count $gt 9 (value: 4)"
                    .replace("$or", "none of $or"),
                "metadata.plan $in [\"team\"] (value: \"pro\")".to_string(),
                "metadata.x = 1 (value: missing)".to_string(),
            ]
        );
        let mut none = Vec::new();
        assert!(Condition::parse(&json!({"model": "auto"}), "w")
            .unwrap()
            .explain(&facts(), &mut none));
        assert!(none.is_empty());
        let mut not = Vec::new();
        assert!(!Condition::parse(&json!({"$not": {"model": "auto"}}), "w")
            .unwrap()
            .explain(&facts(), &mut not));
        assert_eq!(not, ["$not: the inner condition held"]);
    }

    #[test]
    fn depth_is_bounded() {
        let mut when = json!({"model": "auto"});
        for _ in 0..(MAX_DEPTH + 2) {
            when = json!({"$not": when});
        }
        let errors = Condition::parse(&when, "when").unwrap_err();
        assert!(errors[0].message.contains("nest deeper"));
    }
}
