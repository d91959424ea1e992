//! `GET /v1/models`: what callers may name as `model`, in OpenAI's list shape: `auto`, the tasks
//! of the rules, and their chat models (with provider, provider model id and context window),
//! then the embedding models apart (`router_kind: "embedding_model"`, with their dimensions).

use crate::rules::names::AUTO;
use crate::rules::Rules;
use serde_json::{json, Value};

/// The list for these rules.
pub fn list(rules: &Rules) -> Value {
    let entry = |id: &str, kind: &str, extra: Value| {
        let mut e = json!({"id": id, "object": "model", "created": 0, "owned_by": "taskrouter", "router_kind": kind});
        if let (Some(o), Value::Object(x)) = (e.as_object_mut(), extra) {
            o.extend(x);
        }
        e
    };
    let mut data = vec![entry(AUTO, "auto", json!({}))];
    let tasks = rules.classifier.task_names();
    data.extend(tasks.map(|t| entry(t, "task", json!({}))));
    data.extend(rules.chat_models().map(|m| {
        let extra = json!({"provider": m.provider, "provider_model": m.model, "context_window": m.context_window});
        entry(&m.name, "model", extra)
    }));
    data.extend(rules.embedding_models().map(|m| {
        let dimensions = m.embeddings.as_ref().map(|e| e.dimensions);
        let extra =
            json!({"provider": m.provider, "provider_model": m.model, "dimensions": dimensions});
        entry(&m.name, "embedding_model", extra)
    }));
    json!({"object": "list", "data": data})
}
