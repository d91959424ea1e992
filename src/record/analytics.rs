//! The per-request record: declared once here, with its Analytics Engine layout (one index, named
//! blobs and doubles in a fixed order) pinned by a test, and the same fields as a JSON log line.
//! Prompt and completion text never enter it.
//!
//! Platform limits respected: 1 index of at most 96 bytes, at most 20 blobs and 20 doubles, and
//! at most 16 KB of blobs in total (each blob here is short and capped).

use crate::access::admission::LimitDecision;
use crate::chat::request::Endpoint;
use crate::chat::usage::Usage;
use crate::decide::cascade::CascadeOutcome;
use crate::decide::classify::TaskSource;
use crate::error::ErrorCode;
use crate::rules::Price;
use crate::stream::watch::{Outcome, StreamWatch, INTERRUPTED};
use serde_json::{json, Value};

/// Blob order in the data point: `blob1` is `BLOBS[0]`, and so on. Never reorder: append.
pub const BLOBS: [&str; 18] = [
    "task",
    "rule",
    "target",
    "provider",
    "model",
    "outcome",
    "fallback_used",
    "stream",
    "rules_version",
    "request_id",
    "colo",
    "country",
    "key_id",
    "cost_basis",
    "task_source",
    "cascade",
    "limits",
    "endpoint",
];

/// Double order in the data point: `double1` is `DOUBLES[0]`, and so on. Never reorder: append.
pub const DOUBLES: [&str; 14] = [
    "total_ms",
    "upstream_ms",
    "ttfb_ms",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "classifier_score",
    "prompt_bytes",
    "status",
    "cascade_ms",
    "cascade_cost_usd",
    "object_calls",
];

const MAX_INDEX_BYTES: usize = 96;
const MAX_BLOB_BYTES: usize = 256;

/// What one request did, filled in as the request goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    pub key_id: String,
    pub task: String,
    pub rule: String,
    pub target: String,
    pub provider: String,
    pub model: String,
    pub outcome: RequestOutcome,
    pub fallback_used: bool,
    pub stream: bool,
    pub rules_version: Option<u64>,
    pub request_id: String,
    pub colo: String,
    pub country: String,
    pub status: u16,
    pub total_ms: f64,
    pub upstream_ms: f64,
    pub ttfb_ms: f64,
    pub attempts: u32,
    pub usage: Option<Usage>,
    /// True when `usage` is our estimate because the provider reported none.
    pub usage_estimated: bool,
    /// The prompt's estimated tokens, for estimating usage the provider did not report.
    pub estimated_prompt_tokens: u64,
    pub cost_usd: f64,
    pub classifier_score: f64,
    pub prompt_bytes: usize,
    /// Where the task came from (`None` until a decision is made: the `task_source` blob is then
    /// empty).
    pub task_source: Option<TaskSource>,
    /// The classifier cascade.
    pub cascade: CascadeOutcome,
    pub cascade_ms: f64,
    /// The cascade call's cost, on top of `cost_usd`.
    pub cascade_cost_usd: f64,
    /// How the key's limits decided (`None`: the key has none).
    pub limits: Option<LimitDecision>,
    /// The API the request came through.
    pub endpoint: Endpoint,
    /// Calls to Durable Objects this request made or started in the background (leases and
    /// health), so an operator can see how many requests one call serves.
    pub object_calls: u32,
}

/// How a request ended, as its `outcome` blob says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Served (a stream: served to its end).
    #[default]
    Ok,
    /// Refused or failed with this error (its stable code).
    Error(ErrorCode),
    /// A committed stream broke off after bytes reached the client.
    StreamInterrupted,
    /// The client left before the answer ended.
    ClientDisconnected,
}

impl RequestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Error(code) => code.code(),
            RequestOutcome::StreamInterrupted => INTERRUPTED,
            RequestOutcome::ClientDisconnected => "client_disconnected",
        }
    }
}

/// What the shell writes to Analytics Engine.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

impl RequestRecord {
    fn cost_basis(&self) -> &'static str {
        match (self.usage.is_some(), self.usage_estimated) {
            (true, false) => "reported",
            (true, true) => "estimated",
            (false, _) => "none",
        }
    }

    /// Usage and cost of a served answer: as the provider reported it, or else estimated from the
    /// prompt estimate and the answer's characters (about four per token) and marked as such.
    pub fn settle_usage(
        &mut self,
        reported: Option<Usage>,
        answer_chars: u64,
        price: Option<Price>,
    ) {
        match reported {
            Some(u) => {
                self.usage = Some(u);
                self.usage_estimated = false;
            }
            None => {
                self.usage = Some(Usage {
                    input: self.estimated_prompt_tokens,
                    output: answer_chars.div_ceil(4),
                    cached_input: 0,
                });
                self.usage_estimated = true;
            }
        }
        if let (Some(usage), Some(price)) = (self.usage, price) {
            self.cost_usd = usage.cost(&price);
        }
    }

    fn blob_values(&self) -> [String; 18] {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        [
            self.task.clone(),
            self.rule.clone(),
            self.target.clone(),
            self.provider.clone(),
            self.model.clone(),
            self.outcome.as_str().to_string(),
            yes_no(self.fallback_used),
            yes_no(self.stream),
            self.rules_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
            self.request_id.clone(),
            self.colo.clone(),
            self.country.clone(),
            self.key_id.clone(),
            self.cost_basis().to_string(),
            self.task_source
                .map(TaskSource::as_str)
                .unwrap_or_default()
                .to_string(),
            self.cascade.as_str().to_string(),
            self.limits
                .map(LimitDecision::as_str)
                .unwrap_or_default()
                .to_string(),
            self.endpoint.as_str().to_string(),
        ]
    }

    fn double_values(&self) -> [f64; 14] {
        let u = self.usage.unwrap_or_default();
        [
            self.total_ms,
            self.upstream_ms,
            self.ttfb_ms,
            f64::from(self.attempts),
            u.input as f64,
            u.output as f64,
            u.cached_input as f64,
            self.cost_usd,
            self.classifier_score,
            self.prompt_bytes as f64,
            f64::from(self.status),
            self.cascade_ms,
            self.cascade_cost_usd,
            f64::from(self.object_calls),
        ]
    }

    /// Settle the record of a streamed answer however it ended: the provider finished or broke
    /// off, the idle timeout cut it, or the client left. Usage and cost count what the provider
    /// produced (reported, or estimated from the answer so far), so a spend limit sees it.
    pub fn finish_stream(&mut self, watch: &StreamWatch, price: Option<Price>) {
        self.settle_usage(watch.usage, watch.answer_chars, price);
        match &watch.outcome {
            Outcome::Broken(_) => self.outcome = RequestOutcome::StreamInterrupted,
            Outcome::ClientGone => self.outcome = RequestOutcome::ClientDisconnected,
            Outcome::Running | Outcome::Completed => {}
        }
    }

    /// A streamed answer that was never settled (the stream was dropped before it could be): the
    /// client is taken to have left.
    pub fn abandon_stream(&mut self) {
        if self.outcome == RequestOutcome::Ok {
            self.outcome = RequestOutcome::ClientDisconnected;
        }
    }

    pub fn data_point(&self) -> DataPoint {
        DataPoint {
            index: truncate(&self.key_id, MAX_INDEX_BYTES),
            blobs: self
                .blob_values()
                .iter()
                .map(|b| truncate(b, MAX_BLOB_BYTES))
                .collect(),
            doubles: self.double_values().to_vec(),
        }
    }

    /// The `x-router-*` headers that tell the client what the router did: the request id, the
    /// rules version, the task, rule, target, provider and model when known, and after any
    /// provider call the number of calls and whether the plan fell back.
    pub fn router_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("x-router-request-id", self.request_id.clone())];
        if let Some(v) = self.rules_version {
            out.push(("x-router-rules-version", v.to_string()));
        }
        let named = [
            ("x-router-task", &self.task),
            ("x-router-rule", &self.rule),
            ("x-router-target", &self.target),
            ("x-router-provider", &self.provider),
            ("x-router-model", &self.model),
        ];
        for (name, value) in named {
            if !value.is_empty() {
                out.push((name, value.clone()));
            }
        }
        if self.attempts > 0 {
            out.push(("x-router-attempts", self.attempts.to_string()));
            let fallback = if self.fallback_used { "yes" } else { "no" };
            out.push(("x-router-fallback", fallback.to_string()));
        }
        out
    }

    /// One structured log line with the same fields, by name.
    pub fn log_line(&self) -> String {
        let mut fields = serde_json::Map::new();
        fields.insert("event".into(), json!("request"));
        for (name, value) in BLOBS.iter().zip(self.blob_values()) {
            fields.insert((*name).into(), json!(value));
        }
        for (name, value) in DOUBLES.iter().zip(self.double_values()) {
            fields.insert((*name).into(), json!(value));
        }
        Value::Object(fields).to_string()
    }
}

/// Cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::usage::answer_chars;

    fn record() -> RequestRecord {
        RequestRecord {
            key_id: "team-a".into(),
            task: "faq".into(),
            rule: "paid".into(),
            target: "strong".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            outcome: RequestOutcome::Ok,
            fallback_used: false,
            stream: true,
            rules_version: Some(7),
            request_id: "req-1".into(),
            colo: "AMS".into(),
            country: "NL".into(),
            status: 200,
            total_ms: 120.0,
            upstream_ms: 110.0,
            ttfb_ms: 40.0,
            attempts: 1,
            usage: Some(Usage {
                input: 1000,
                output: 500,
                cached_input: 200,
            }),
            usage_estimated: false,
            estimated_prompt_tokens: 900,
            cost_usd: 0.0125,
            classifier_score: 0.0,
            prompt_bytes: 2048,
            task_source: Some(TaskSource::Model),
            cascade: CascadeOutcome::Answered,
            cascade_ms: 35.0,
            cascade_cost_usd: 0.00001,
            limits: Some(LimitDecision::Lease),
            endpoint: Endpoint::Responses,
            object_calls: 1,
        }
    }

    #[test]
    fn layout_is_pinned() {
        let p = record().data_point();
        assert_eq!(p.index, "team-a");
        assert_eq!(
            p.blobs,
            [
                "faq",
                "paid",
                "strong",
                "openai",
                "gpt-4o",
                "ok",
                "no",
                "yes",
                "7",
                "req-1",
                "AMS",
                "NL",
                "team-a",
                "reported",
                "model",
                "answered",
                "lease",
                "responses"
            ]
        );
        assert_eq!(
            p.doubles,
            [
                120.0, 110.0, 40.0, 1.0, 1000.0, 500.0, 200.0, 0.0125, 0.0, 2048.0, 200.0, 35.0,
                0.00001, 1.0
            ]
        );
        assert!(BLOBS.len() <= 20 && DOUBLES.len() <= 20);
    }

    #[test]
    fn platform_limits_hold_for_long_values() {
        let mut r = record();
        r.key_id = "k".repeat(500);
        r.request_id = "é".repeat(500);
        let p = r.data_point();
        assert!(p.index.len() <= 96);
        assert!(p.blobs.iter().all(|b| b.len() <= 256));
        assert!(p.blobs.iter().map(String::len).sum::<usize>() <= 16 * 1024);
    }

    #[test]
    fn log_line_names_every_field_and_no_text() {
        let line: Value = serde_json::from_str(&record().log_line()).unwrap();
        for name in BLOBS.iter().chain(DOUBLES.iter()) {
            assert!(line.get(*name).is_some(), "{name}");
        }
        assert_eq!(line["cost_usd"], 0.0125);
    }

    #[test]
    fn usage_is_estimated_when_not_reported() {
        let price = Price {
            input: 1.0,
            output: 2.0,
            cached_input: None,
        };
        let mut r = RequestRecord {
            estimated_prompt_tokens: 100,
            ..RequestRecord::default()
        };
        let body = serde_json::json!({"choices": [{"message": {"content": "twelve chars", "tool_calls": [
            {"function": {"name": "f", "arguments": "{\"a\":1}"}}]}}]});
        r.settle_usage(None, answer_chars(&body), Some(price));
        assert_eq!(
            r.usage,
            Some(Usage {
                input: 100,
                output: 5,
                cached_input: 0
            }),
            "(12 + 7) chars / 4, rounded up"
        );
        assert!((r.cost_usd - (100.0 + 10.0) / 1e6).abs() < 1e-15);
        assert_eq!(r.data_point().blobs[13], "estimated");
        r.settle_usage(
            Some(Usage {
                input: 3,
                output: 4,
                cached_input: 0,
            }),
            999,
            Some(price),
        );
        assert_eq!(
            (r.usage.unwrap().output, r.data_point().blobs[13].as_str()),
            (4, "reported")
        );
        assert_eq!(RequestRecord::default().data_point().blobs[13], "none");
    }

    #[test]
    fn a_stream_is_settled_however_it_ends() {
        let price = Price {
            input: 1.0,
            output: 2.0,
            cached_input: None,
        };
        let tok = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"eight ch\"}}]}\n\n";
        let settled = |end: &dyn Fn(&mut StreamWatch)| {
            let mut watch = StreamWatch::new(false);
            watch.on_chunk(tok);
            end(&mut watch);
            let mut r = RequestRecord {
                estimated_prompt_tokens: 100,
                outcome: RequestOutcome::Ok,
                ..RequestRecord::default()
            };
            r.finish_stream(&watch, Some(price));
            (r.outcome, r.usage.map(|u| u.output), r.cost_usd)
        };
        // The client leaves mid-answer: what the provider produced is still counted and billed.
        let (outcome, output, cost) = settled(&|w| w.on_client_gone());
        assert_eq!((outcome.as_str(), output), ("client_disconnected", Some(2)));
        assert!((cost - (100.0 + 4.0) / 1e6).abs() < 1e-15, "{cost}");
        let (outcome, output, _) = settled(&|w| {
            w.on_error("Timeout");
        });
        assert_eq!(
            (outcome.as_str(), output),
            (crate::stream::watch::INTERRUPTED, Some(2))
        );
        let (outcome, ..) = settled(&|w| {
            w.on_chunk(b"data: [DONE]\n\n");
            w.on_client_gone();
        });
        assert_eq!(
            outcome.as_str(),
            "ok",
            "leaving after the end changes nothing"
        );
    }

    #[test]
    fn usage_and_cost() {
        let body = serde_json::json!({"usage": {"prompt_tokens": 1000, "completion_tokens": 500,
                                      "prompt_tokens_details": {"cached_tokens": 200}}});
        let u = Usage::from_openai(&body).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 1000,
                output: 500,
                cached_input: 200
            }
        );
        let price = Price {
            input: 2.5,
            output: 10.0,
            cached_input: Some(1.25),
        };
        // 800 * 2.5 + 200 * 1.25 + 500 * 10 = 2000 + 250 + 5000 = 7250 per million.
        assert!((u.cost(&price) - 0.00725).abs() < 1e-12);
        let no_cache_price = Price {
            input: 2.5,
            output: 10.0,
            cached_input: None,
        };
        assert!((u.cost(&no_cache_price) - 0.0075).abs() < 1e-12);
        assert_eq!(Usage::from_openai(&serde_json::json!({"id": "x"})), None);
    }
}
