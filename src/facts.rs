//! The facts a request is routed on, derived once per request into one JSON document that
//! conditions address by dotted path (`metadata.plan`, `message_count`, `task`).

use crate::request::ChatRequest;
use serde_json::{json, Value};

/// Build the fact document. `task` is the caller's explicit task (metadata `task`) when given.
pub fn facts(req: &ChatRequest) -> Value {
    let task = req
        .metadata
        .get("task")
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "metadata": req.metadata,
        "model": req.model,
        "stream": req.stream,
        "message_count": req.message_count,
        "task": task,
        "params": {
            "max_tokens": req.body.get("max_completion_tokens").or_else(|| req.body.get("max_tokens")),
            "temperature": req.body.get("temperature"),
            "tools": req.body.get("tools").is_some(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;
    use crate::request::parse_chat;

    #[test]
    fn facts_carry_metadata_and_shape() {
        let body = json!({"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}],
                          "metadata": {"task": "faq", "plan": "pro"}});
        let req = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 10_000).unwrap();
        let f = facts(&req);
        assert_eq!(f["task"], "faq");
        assert_eq!(f["metadata"]["plan"], "pro");
        assert_eq!(f["message_count"], 1);
        assert_eq!(f["stream"], false);
        assert_eq!(f["params"]["max_tokens"], 50);
        assert_eq!(f["params"]["tools"], false);
    }
}
