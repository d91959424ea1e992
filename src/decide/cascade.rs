//! The classifier cascade, pure parts: the question put to a cheap model when the built-in task
//! model is unsure (one label, constrained by a JSON schema), reading its answer, and the isolate's
//! cache of answers by prompt hash. `dispatch::cascade` makes the call (docs/rules.md#the-cascade).

use crate::chat::request::ChatRequest;
use crate::decide::classify::Texts;
use crate::task_model::OUT_OF_SCOPE;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;

/// Text of the last user message sent to the cascade model: enough to judge the task.
const MAX_PROMPT_CHARS: usize = 2_000;
/// Answers kept per isolate; the cache is emptied when full (simple, and bounded).
const CACHE_CAPACITY: usize = 4_096;

/// The chat request asking `model` (a model of the rules) to pick one of `labels`.
pub fn question(model: &str, labels: &[String], texts: &Texts) -> ChatRequest {
    let cut = texts
        .last_user
        .char_indices()
        .nth(MAX_PROMPT_CHARS)
        .map_or(texts.last_user.len(), |(i, _)| i);
    let none = if labels.iter().any(|l| l == OUT_OF_SCOPE) {
        format!(" Use {OUT_OF_SCOPE} when the request asks for none of the other tasks (greetings, small talk, opinions, role play).")
    } else {
        String::new()
    };
    let system = format!(
        "You label requests sent to an AI assistant with the task they ask for. Answer with JSON \
         {{\"task\": \"<label>\"}} and nothing else. Labels: {}.{none}",
        labels.join(", ")
    );
    let body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": &texts.last_user[..cut]},
        ],
        "max_tokens": 20,
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "task_label",
                "strict": true,
                "schema": {
                    "type": "object",
                    "properties": {"task": {"type": "string", "enum": labels}},
                    "required": ["task"],
                    "additionalProperties": false,
                },
            },
        },
    });
    let size = body.to_string().len();
    let body: Map<String, Value> = match body {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    ChatRequest {
        size,
        body,
        model: model.to_string(),
        stream: false,
        message_count: 2,
        metadata: Map::new(),
        endpoint: crate::chat::request::Endpoint::ChatCompletions,
        responses_request: None,
    }
}

/// The label in a chat completion's answer: `{"task": "x"}`, or a bare label (models without
/// JSON mode), if it is one of `labels`.
pub fn read_answer(completion: &[u8], labels: &[String]) -> Option<String> {
    let v: Value = serde_json::from_slice(completion).ok()?;
    let content = v.pointer("/choices/0/message/content")?.as_str()?.trim();
    let label = match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(o)) => o.get("task")?.as_str()?.trim().to_string(),
        Ok(Value::String(s)) => s.trim().to_string(),
        _ => content
            .trim_matches(|c: char| c == '"' || c == '.' || c.is_whitespace())
            .to_string(),
    };
    labels
        .iter()
        .find(|l| l.eq_ignore_ascii_case(&label))
        .cloned()
}

/// A stable hash of what the cascade is asked about (FNV-1a 64 over system and user text).
pub fn prompt_key(texts: &Texts) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [texts.system.as_bytes(), &[0u8], texts.last_user.as_bytes()] {
        for b in part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// How long the Cache API keeps a cascade answer (one day).
pub const SHARED_TTL_S: u64 = 86_400;

/// The key of a prompt's answer in the shared cache (the Cache API, per location).
pub fn shared_key(prompt_key: u64) -> String {
    format!("cascade/{prompt_key:016x}")
}

/// Cascade answers by prompt hash, per isolate.
#[derive(Debug, Default)]
pub struct CascadeCache {
    answers: RefCell<HashMap<u64, String>>,
}

impl CascadeCache {
    pub fn get(&self, key: u64) -> Option<String> {
        self.answers.borrow().get(&key).cloned()
    }

    pub fn put(&self, key: u64, label: String) {
        let mut answers = self.answers.borrow_mut();
        if answers.len() >= CACHE_CAPACITY {
            answers.clear();
        }
        answers.insert(key, label);
    }
}

/// What became of the cascade for one request (the `cascade` blob of its data point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CascadeOutcome {
    /// The request did not need it.
    #[default]
    NotAsked,
    /// The cascade model answered one of the labels.
    Answered,
    /// This prompt's answer was cached (in the isolate or the location).
    Cached,
    /// The call failed.
    Failed,
    /// The answer was not one of the labels.
    Unreadable,
}

impl CascadeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CascadeOutcome::NotAsked => "",
            CascadeOutcome::Answered => "answered",
            CascadeOutcome::Cached => "cached",
            CascadeOutcome::Failed => "failed",
            CascadeOutcome::Unreadable => "unreadable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["billing", "faq", "translation"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn texts(user: &str) -> Texts {
        Texts {
            last_user: user.into(),
            system: String::new(),
            conversation: user.into(),
        }
    }

    fn completion(content: &str) -> Vec<u8> {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_question_constrains_the_answer_to_the_labels() {
        let long = "é".repeat(5_000);
        let q = question("cheap", &labels(), &texts(&long));
        assert_eq!(q.model, "cheap");
        assert!(!q.stream);
        let schema = &q.body["response_format"]["json_schema"]["schema"];
        assert_eq!(schema["properties"]["task"]["enum"], json!(labels()));
        let sent = q.body["messages"][1]["content"].as_str().unwrap();
        assert_eq!(
            sent.chars().count(),
            MAX_PROMPT_CHARS,
            "the prompt sent is bounded"
        );
        assert!(q.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("billing, faq, translation"));
        assert!(!q.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains(OUT_OF_SCOPE));
        // A model that knows out-of-scope prompts lets the cascade say so too.
        let mut with_none = labels();
        with_none.push(OUT_OF_SCOPE.into());
        let q = question("cheap", &with_none, &texts("hi there"));
        let system = q.body["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains("Use out_of_scope when"), "{system}");
        assert_eq!(
            q.body["response_format"]["json_schema"]["schema"]["properties"]["task"]["enum"][3],
            OUT_OF_SCOPE
        );
    }

    #[test]
    fn answers_are_read_strictly() {
        let l = labels();
        assert_eq!(
            read_answer(&completion(r#"{"task": "faq"}"#), &l).as_deref(),
            Some("faq")
        );
        assert_eq!(
            read_answer(&completion(" Billing. "), &l).as_deref(),
            Some("billing")
        );
        assert_eq!(
            read_answer(&completion("\"translation\""), &l).as_deref(),
            Some("translation")
        );
        assert_eq!(read_answer(&completion(r#"{"task": "poetry"}"#), &l), None);
        assert_eq!(read_answer(&completion("I think it is billing"), &l), None);
        assert_eq!(read_answer(b"not json", &l), None);
        assert_eq!(read_answer(br#"{"choices": []}"#, &l), None);
    }

    #[test]
    fn the_cache_keys_by_prompt_and_stays_bounded() {
        let cache = CascadeCache::default();
        let (a, b) = (prompt_key(&texts("one")), prompt_key(&texts("two")));
        assert_ne!(a, b);
        assert_eq!(a, prompt_key(&texts("one")));
        let mut with_system = texts("one");
        with_system.system = "be brief".into();
        assert_ne!(a, prompt_key(&with_system));
        cache.put(a, "faq".into());
        assert_eq!(cache.get(a).as_deref(), Some("faq"));
        assert_eq!(cache.get(b), None);
        for i in 0..(CACHE_CAPACITY as u64 + 10) {
            cache.put(i + 1_000_000, "x".into());
        }
        assert!(cache.answers.borrow().len() <= CACHE_CAPACITY);
    }
}
