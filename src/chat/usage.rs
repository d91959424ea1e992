//! Token usage in the OpenAI shape, the router's lingua franca: read from whole answers, counted
//! from answer text when a provider reports none, priced from the rules, and written back in the
//! shape each front door speaks (OpenAI's `usage`, Anthropic's).

use crate::rules::Price;
use serde_json::Value;

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
}

/// Characters of answer text in an OpenAI-shaped completion: message content and tool-call
/// arguments of every choice (for estimating output tokens); in a Response, the text and
/// arguments of its output items.
pub fn answer_chars(completion: &Value) -> u64 {
    let mut n = 0usize;
    for item in completion
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count());
        n += text(item.get("arguments"));
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            n += text(part.get("text"));
        }
    }
    for choice in completion
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for part in [choice.get("message"), choice.get("delta")]
            .into_iter()
            .flatten()
        {
            n += part
                .get("content")
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count());
            for call in part
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                n += call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.chars().count());
            }
        }
    }
    n as u64
}

impl Usage {
    /// OpenAI's `usage` object, as translated answers and streams report it.
    pub fn to_openai(self) -> Value {
        serde_json::json!({"prompt_tokens": self.input, "completion_tokens": self.output,
                           "total_tokens": self.input + self.output,
                           "prompt_tokens_details": {"cached_tokens": self.cached_input}})
    }

    /// Anthropic's `usage` object: input tokens less those read from the prompt cache, which it
    /// counts apart.
    pub fn to_anthropic(self) -> Value {
        serde_json::json!({"input_tokens": self.input.saturating_sub(self.cached_input),
                           "cache_read_input_tokens": self.cached_input,
                           "output_tokens": self.output})
    }

    /// Read OpenAI-shaped `usage` (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`).
    pub fn from_openai(body: &Value) -> Option<Usage> {
        let u = body.get("usage")?;
        let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        Some(Usage {
            input: n(u.get("prompt_tokens")),
            output: n(u.get("completion_tokens")),
            cached_input: n(u.pointer("/prompt_tokens_details/cached_tokens")),
        })
    }

    /// Read the Responses API's `usage` (`input_tokens` with the cached ones included,
    /// `output_tokens`, `input_tokens_details.cached_tokens`).
    pub fn from_responses(usage: &Value) -> Option<Usage> {
        let n = |p: &str| usage.pointer(p).and_then(Value::as_u64);
        Some(Usage {
            input: n("/input_tokens")?,
            output: n("/output_tokens").unwrap_or(0),
            cached_input: n("/input_tokens_details/cached_tokens").unwrap_or(0),
        })
    }

    /// Cost in US dollars: cached input at its own price when the table has one.
    pub fn cost(&self, price: &Price) -> f64 {
        let cached = self.cached_input.min(self.input);
        let cached_price = price.cached_input.unwrap_or(price.input);
        ((self.input - cached) as f64 * price.input
            + cached as f64 * cached_price
            + self.output as f64 * price.output)
            / 1_000_000.0
    }
}
