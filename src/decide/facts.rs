//! The facts a request is routed on, derived once per request into one JSON document that
//! conditions address by dotted path (`metadata.plan`, `estimated_tokens`, `script`), plus the
//! texts the classifier reads. docs/rules.md lists every fact.

use crate::chat::request::{ChatRequest, METADATA_HEADER};
use crate::decide::classify::Texts;
use serde_json::{json, Map, Value};

/// Headers never exposed as facts (they carry credentials, or are facts already).
const HIDDEN_HEADERS: [&str; 6] = [
    "authorization",
    "x-api-key",
    "cookie",
    "proxy-authorization",
    "cf-access-jwt-assertion",
    METADATA_HEADER,
];

/// The fact document and the texts for classification.
pub struct Derived {
    pub facts: Value,
    pub texts: Texts,
}

/// The text of a message's `content`: a string, or the text parts of an array.
fn content_text(content: Option<&Value>, out: &mut String) {
    match content {
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(parts)) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
        }
        _ => {}
    }
}

fn has_image(content: Option<&Value>) -> bool {
    let Some(Value::Array(parts)) = content else {
        return false;
    };
    parts.iter().any(|p| {
        matches!(
            p.get("type").and_then(Value::as_str),
            Some("image_url" | "input_image" | "image")
        )
    })
}

pub fn derive(req: &ChatRequest, headers: &[(String, String)]) -> Derived {
    let mut texts = Texts::default();
    let mut images = false;
    let messages = req
        .body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content");
        images |= has_image(content);
        let mut text = String::new();
        content_text(content, &mut text);
        if role == "system" || role == "developer" {
            if !texts.system.is_empty() {
                texts.system.push('\n');
            }
            texts.system.push_str(&text);
        }
        if role == "user" {
            texts.last_user.clone_from(&text);
        }
        if !texts.conversation.is_empty() {
            texts.conversation.push('\n');
        }
        texts.conversation.push_str(&text);
    }
    let mut params = Map::new();
    for (k, v) in &req.body {
        if k != "messages" && k != "tools" && k != "functions" {
            params.insert(k.clone(), v.clone());
        }
    }
    let header_facts: Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| !HIDDEN_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let has_tools = req
        .body
        .get("tools")
        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        || req.body.get("functions").is_some();
    let max_tokens = req
        .body
        .get("max_completion_tokens")
        .or_else(|| req.body.get("max_tokens"))
        .cloned();
    let facts = json!({
        "metadata": req.metadata,
        "headers": header_facts,
        "params": params,
        "model": req.model,
        "stream": req.stream,
        "message_count": req.message_count,
        "last_user_message": texts.last_user,
        "system_prompt": texts.system,
        "estimated_tokens": estimate_tokens(&texts.conversation),
        "has_code": texts.conversation.contains("```"),
        "script": dominant_script(&texts.last_user),
        "has_tools": has_tools,
        "has_images": images,
        "max_tokens": max_tokens,
        "task": Value::Null,
        "task_score": 0.0,
        "model_task": Value::Null,
        "model_score": 0.0,
    });
    Derived { facts, texts }
}

/// A cheap token estimate: about four characters per token, as providers' rules of thumb say.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The writing system most letters of `text` belong to: `latin`, `cyrillic`, `greek`, `arabic`,
/// `hebrew`, `devanagari`, `thai`, `chinese`, `japanese` (any kana), `korean`, `other`, or `none`.
pub fn dominant_script(text: &str) -> &'static str {
    const NAMES: [&str; 11] = [
        "latin",
        "cyrillic",
        "greek",
        "arabic",
        "hebrew",
        "devanagari",
        "thai",
        "chinese",
        "japanese",
        "korean",
        "other",
    ];
    if text.is_ascii() {
        return if text.bytes().any(|b| b.is_ascii_alphabetic()) {
            "latin"
        } else {
            "none"
        };
    }
    let mut counts = [0usize; 11];
    for c in text.chars() {
        // ASCII first: most prompts are mostly ASCII, and this avoids the Unicode tables.
        if c.is_ascii() {
            counts[0] += usize::from(c.is_ascii_alphabetic());
            continue;
        }
        if !c.is_alphabetic() {
            continue;
        }
        let i = match c as u32 {
            0x00C0..=0x024F | 0x1E00..=0x1EFF => 0,
            0x0400..=0x052F => 1,
            0x0370..=0x03FF => 2,
            0x0600..=0x06FF | 0x0750..=0x077F => 3,
            0x0590..=0x05FF => 4,
            0x0900..=0x097F => 5,
            0x0E00..=0x0E7F => 6,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => 7,
            0x3040..=0x30FF => 8,
            0xAC00..=0xD7AF | 0x1100..=0x11FF => 9,
            _ => 10,
        };
        counts[i] += 1;
    }
    // Japanese mixes kanji with kana: any kana makes han count as Japanese.
    if counts[8] > 0 {
        counts[8] += counts[7];
        counts[7] = 0;
    }
    match counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
    {
        Some((_, 0)) | None => "none",
        Some((i, _)) => NAMES[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::request::parse_chat;
    use crate::http::Body;

    fn derived(body: Value, headers: &[(&str, &str)]) -> Derived {
        let req = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20).unwrap();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        derive(&req, &headers)
    }

    #[test]
    fn facts_of_a_request() {
        let d = derived(
            json!({"model": "auto", "max_tokens": 50, "temperature": 0.1, "tools": [{"type": "function"}],
                   "messages": [
                       {"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "first"},
                       {"role": "assistant", "content": "ok"},
                       {"role": "user", "content": [{"type": "text", "text": "Explain ```x```"},
                                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
                   ],
                   "metadata": {"task": "faq", "plan": "pro"}}),
            &[
                ("authorization", "Bearer secret"),
                ("x-team", "blue"),
                ("x-router-metadata", "{}"),
            ],
        );
        let f = &d.facts;
        assert_eq!(f["metadata"]["plan"], "pro");
        assert_eq!(f["message_count"], 4);
        assert_eq!(f["last_user_message"], "Explain ```x```");
        assert_eq!(f["system_prompt"], "Be brief.");
        assert_eq!(f["has_code"], true);
        assert_eq!(f["has_images"], true);
        assert_eq!(f["has_tools"], true);
        assert_eq!(f["max_tokens"], 50);
        assert_eq!(f["params"]["temperature"], 0.1);
        assert!(f["params"].get("messages").is_none() && f["params"].get("tools").is_none());
        assert_eq!(f["headers"]["x-team"], "blue");
        assert!(
            f["headers"].get("authorization").is_none(),
            "credentials never become facts"
        );
        assert!(f["headers"].get("x-router-metadata").is_none());
        assert_eq!(f["script"], "latin");
        assert_eq!(
            d.texts.conversation,
            "Be brief.\nfirst\nok\nExplain ```x```"
        );
        assert_eq!(
            f["estimated_tokens"],
            estimate_tokens(&d.texts.conversation)
        );
    }

    #[test]
    fn scripts() {
        let table = [
            ("Hello there", "latin"),
            ("Привет, как дела?", "cyrillic"),
            ("Καλημέρα", "greek"),
            ("مرحبا بالعالم", "arabic"),
            ("שלום", "hebrew"),
            ("नमस्ते दुनिया", "devanagari"),
            ("สวัสดี", "thai"),
            ("你好世界", "chinese"),
            ("こんにちは世界", "japanese"),
            ("안녕하세요", "korean"),
            ("1234 !!", "none"),
            ("Translate «Привет» please now", "latin"),
        ];
        for (text, want) in table {
            assert_eq!(dominant_script(text), want, "{text}");
        }
    }
}
