//! Embeddings answers: OpenAI's list (also at Azure deployments) and Gemini's
//! `batchEmbedContents`, with deterministic vectors so tests can compare them: `dimensions` (or
//! Gemini's `outputDimensionality`) numbers per input, 8 by default, each a function of the input
//! text and the model; `prompt_tokens` is the characters of the inputs / 4, rounded up (OpenAI
//! only: Gemini reports no usage). OpenAI's answer honours `encoding_format: "base64"`
//! (little-endian 32-bit floats), which its SDKs ask for by default.

use serde_json::{json, Value};

const DEFAULT_DIMENSIONS: u64 = 8;

/// A vector for `text` from `model`: the same inputs always give the same numbers.
pub fn vector(model: &str, text: &str, dimensions: u64) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model.bytes().chain([0]).chain(text.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..dimensions)
        .map(|j| {
            let x = h.rotate_left((j * 7 % 64) as u32) ^ j;
            ((x % 2000) as f64 / 1000.0) - 1.0
        })
        .collect()
}

fn inputs(body: &Value) -> Vec<String> {
    match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// OpenAI's `POST /v1/embeddings` answer.
pub fn openai(model: &str, body: &Value) -> Value {
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_DIMENSIONS);
    let texts = inputs(body);
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let tokens = chars.div_ceil(4).max(1);
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = vector(model, t, dims);
            let embedding = match body.get("encoding_format").and_then(Value::as_str) {
                Some("base64") => json!(base64(&v)),
                _ => json!(v),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn base64(v: &[f64]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Gemini's `batchEmbedContents` answer.
pub fn gemini(model: &str, body: &Value) -> Value {
    let embeddings: Vec<Value> = body
        .get("requests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let text = r
                .pointer("/content/parts/0/text")
                .and_then(Value::as_str)
                .unwrap_or("");
            let dims = r
                .get("outputDimensionality")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_DIMENSIONS);
            json!({"values": vector(model, text, dims)})
        })
        .collect();
    json!({"embeddings": embeddings})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_sized() {
        assert_eq!(vector("m", "a", 4), vector("m", "a", 4));
        assert_ne!(vector("m", "a", 4), vector("m", "b", 4));
        assert_ne!(vector("m", "a", 4), vector("n", "a", 4));
        let a = openai("m", &json!({"input": ["abcd", "efgh"], "dimensions": 3}));
        assert_eq!(a["data"][1]["embedding"].as_array().unwrap().len(), 3);
        assert_eq!(a["usage"]["prompt_tokens"], 2);
        let g = gemini(
            "m",
            &json!({"requests": [{"content": {"parts": [{"text": "abcd"}]}}]}),
        );
        assert_eq!(g["embeddings"][0]["values"], json!(vector("m", "abcd", 8)));
    }
}
