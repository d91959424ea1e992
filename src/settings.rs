//! The Worker's settings, read from its vars once per isolate. A var that cannot be used is not
//! silently ignored: it lands in `problems`, saying what was rejected and what is used instead,
//! for the log and `GET /healthz`.

use crate::chat::request::DEFAULT_MAX_BODY_BYTES;
use serde_json::json;

/// KV key of the live rules document.
pub const DEFAULT_RULES_KEY: &str = "rules";
pub const DEFAULT_CACHE_TTL_MS: f64 = 30_000.0;

/// Knobs the Worker reads from its vars.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rules_key: String,
    /// How long rules and key records are trusted before KV is read again.
    pub cache_ttl_ms: f64,
    pub max_body_bytes: usize,
    /// Write one structured log line per request (`REQUEST_LOG` = `off` turns it off).
    pub request_log: bool,
    /// The share of a key's limit one lease takes (`LEASE_FRACTION`, over 0 and at most 1).
    pub lease_fraction: f64,
    /// What a key's request limit does when its Durable Object cannot be reached
    /// (`RATE_LIMIT_WHEN_UNREACHABLE`).
    pub rate_limit_unreachable: WhenUnreachable,
    /// The same for its spend limit (`SPEND_LIMIT_WHEN_UNREACHABLE`).
    pub spend_limit_unreachable: WhenUnreachable,
    /// How long an isolate trusts its copy of a target's shared health (`HEALTH_TTL_SECONDS`).
    pub health_ttl_ms: f64,
    /// How long a request waits for a Durable Object before counting it unreachable
    /// (`OBJECT_TIMEOUT_MS`).
    pub object_timeout_ms: u64,
    /// The Cloudflare API the admin API's traffic queries go to (`ANALYTICS_SQL_URL`, tests
    /// point it at a double); the SQL API is `<base>/accounts/<account>/analytics_engine/sql`.
    pub analytics_api_base: String,
    /// The Analytics Engine dataset those queries read (`ANALYTICS_DATASET`).
    pub analytics_dataset: String,
    /// Vars that were set but could not be used: what was rejected and what is used instead.
    pub problems: Vec<String>,
}

/// What a limit does when the Durable Object that counts it cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnreachable {
    /// Serve, counting in this isolate alone (as a deployment without the objects does).
    Open,
    /// Refuse with 503 `limits_unavailable`.
    Closed,
}

impl WhenUnreachable {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUnreachable::Open => "open",
            WhenUnreachable::Closed => "closed",
        }
    }
}

pub const DEFAULT_LEASE_FRACTION: f64 = 0.1;
pub const DEFAULT_HEALTH_TTL_MS: f64 = 5_000.0;
pub const DEFAULT_OBJECT_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_ANALYTICS_API_BASE: &str = "https://api.cloudflare.com/client/v4";
/// The dataset wrangler.toml binds `ANALYTICS` to.
pub const DEFAULT_ANALYTICS_DATASET: &str = "taskrouter_requests";

/// A dataset name: letters, digits and `_`, at most 64.
pub fn check_dataset(d: &str) -> Result<(), String> {
    let ok =
        !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(())
        .ok_or_else(|| format!("not a dataset name: {d:?}"))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules_key: DEFAULT_RULES_KEY.into(),
            cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_log: true,
            lease_fraction: DEFAULT_LEASE_FRACTION,
            rate_limit_unreachable: WhenUnreachable::Open,
            spend_limit_unreachable: WhenUnreachable::Closed,
            health_ttl_ms: DEFAULT_HEALTH_TTL_MS,
            object_timeout_ms: DEFAULT_OBJECT_TIMEOUT_MS,
            analytics_api_base: DEFAULT_ANALYTICS_API_BASE.into(),
            analytics_dataset: DEFAULT_ANALYTICS_DATASET.into(),
            problems: Vec::new(),
        }
    }
}

/// The largest `MAX_BODY_BYTES` accepted: the platform's own request body limit (100 MB).
pub const MAX_BODY_LIMIT: usize = 100 * 1024 * 1024;

impl Settings {
    /// Settings from the Worker's vars (`var` returns a var's text when it is set). A value that
    /// cannot be used is not silently ignored: it lands in `problems`, saying what was rejected
    /// and what is used instead, for the log and `GET /healthz`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Settings {
        let mut s = Settings::default();
        if let Some(v) = var("RULES_KEY") {
            match v.trim() {
                "" => s
                    .problems
                    .push(rejected("RULES_KEY", &v, "is empty", s.rules_key.clone())),
                key => s.rules_key = key.to_string(),
            }
        }
        if let Some(v) = var("CACHE_TTL_SECONDS") {
            match v.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && (0.0..=86_400.0).contains(&secs) => {
                    s.cache_ttl_ms = secs * 1000.0;
                }
                _ => s.problems.push(rejected(
                    "CACHE_TTL_SECONDS",
                    &v,
                    "is not a number of seconds from 0 to 86400",
                    format!("{}", s.cache_ttl_ms / 1000.0),
                )),
            }
        }
        if let Some(v) = var("MAX_BODY_BYTES") {
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_BODY_LIMIT).contains(&n) => s.max_body_bytes = n,
                _ => s.problems.push(rejected(
                    "MAX_BODY_BYTES",
                    &v,
                    "is not a whole number of bytes from 1 to 104857600",
                    s.max_body_bytes.to_string(),
                )),
            }
        }
        if let Some(v) = var("REQUEST_LOG") {
            match v.trim() {
                "off" => s.request_log = false,
                "on" | "" => s.request_log = true,
                _ => s.problems.push(rejected(
                    "REQUEST_LOG",
                    &v,
                    "is neither on nor off",
                    "on".into(),
                )),
            }
        }
        if let Some(v) = var("LEASE_FRACTION") {
            match v.trim().parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => s.lease_fraction = f,
                _ => s.problems.push(rejected(
                    "LEASE_FRACTION",
                    &v,
                    "is not a number over 0 and at most 1",
                    s.lease_fraction.to_string(),
                )),
            }
        }
        let mut problems = Vec::new();
        for (name, slot) in [
            ("RATE_LIMIT_WHEN_UNREACHABLE", &mut s.rate_limit_unreachable),
            (
                "SPEND_LIMIT_WHEN_UNREACHABLE",
                &mut s.spend_limit_unreachable,
            ),
        ] {
            if let Some(v) = var(name) {
                match v.trim() {
                    "open" => *slot = WhenUnreachable::Open,
                    "closed" => *slot = WhenUnreachable::Closed,
                    _ => problems.push(rejected(
                        name,
                        &v,
                        "is neither open nor closed",
                        slot.as_str().into(),
                    )),
                }
            }
        }
        s.problems.extend(problems);
        if let Some(v) = var("HEALTH_TTL_SECONDS") {
            match v.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && (0.0..=3_600.0).contains(&secs) => {
                    s.health_ttl_ms = secs * 1000.0;
                }
                _ => s.problems.push(rejected(
                    "HEALTH_TTL_SECONDS",
                    &v,
                    "is not a number of seconds from 0 to 3600",
                    format!("{}", s.health_ttl_ms / 1000.0),
                )),
            }
        }
        if let Some(v) = var("OBJECT_TIMEOUT_MS") {
            match v.trim().parse::<u64>() {
                Ok(ms) if (1..=30_000).contains(&ms) => s.object_timeout_ms = ms,
                _ => s.problems.push(rejected(
                    "OBJECT_TIMEOUT_MS",
                    &v,
                    "is not a whole number of milliseconds from 1 to 30000",
                    s.object_timeout_ms.to_string(),
                )),
            }
        }
        if let Some(v) = var("ANALYTICS_SQL_URL") {
            let v2 = v.trim();
            match url::Url::parse(v2) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {
                    s.analytics_api_base = v2.trim_end_matches('/').to_string();
                }
                _ => s.problems.push(rejected(
                    "ANALYTICS_SQL_URL",
                    &v,
                    "is not an http(s) URL",
                    s.analytics_api_base.clone(),
                )),
            }
        }
        if let Some(v) = var("ANALYTICS_DATASET") {
            let name = v.trim();
            match check_dataset(name) {
                Ok(()) => s.analytics_dataset = name.to_string(),
                Err(_) => s.problems.push(rejected(
                    "ANALYTICS_DATASET",
                    &v,
                    "is not a dataset name (letters, digits and _)",
                    s.analytics_dataset.clone(),
                )),
            }
        }
        s
    }

    /// The effective settings, for `GET /healthz` (no secrets among them).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "rules_key": self.rules_key,
            "cache_ttl_seconds": self.cache_ttl_ms / 1000.0,
            "max_body_bytes": self.max_body_bytes,
            "request_log": if self.request_log { "on" } else { "off" },
            "lease_fraction": self.lease_fraction,
            "rate_limit_when_unreachable": self.rate_limit_unreachable.as_str(),
            "spend_limit_when_unreachable": self.spend_limit_unreachable.as_str(),
            "health_ttl_seconds": self.health_ttl_ms / 1000.0,
            "object_timeout_ms": self.object_timeout_ms,
        })
    }
}

fn rejected(name: &str, value: &str, why: &str, used: String) -> String {
    let shown: String = value.chars().take(64).collect();
    format!("{name} {shown:?} {why}; using {used}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_that_cannot_be_used_are_reported_with_what_is_used_instead() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_vars(move |name| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(vars(&[]), Settings::default());
        let good = vars(&[
            ("CACHE_TTL_SECONDS", "5"),
            ("MAX_BODY_BYTES", "2048"),
            ("REQUEST_LOG", "off"),
            ("RULES_KEY", "rules-v2"),
            ("LEASE_FRACTION", "0.25"),
            ("SPEND_LIMIT_WHEN_UNREACHABLE", "open"),
            ("RATE_LIMIT_WHEN_UNREACHABLE", "closed"),
            ("HEALTH_TTL_SECONDS", "1"),
            ("OBJECT_TIMEOUT_MS", "250"),
        ]);
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        assert_eq!(
            (good.cache_ttl_ms, good.max_body_bytes, good.request_log),
            (5000.0, 2048, false)
        );
        assert_eq!(
            (
                good.lease_fraction,
                good.rate_limit_unreachable,
                good.spend_limit_unreachable,
                good.health_ttl_ms,
                good.object_timeout_ms
            ),
            (
                0.25,
                WhenUnreachable::Closed,
                WhenUnreachable::Open,
                1000.0,
                250
            )
        );
        let bad = vars(&[
            ("CACHE_TTL_SECONDS", "soon"),
            ("MAX_BODY_BYTES", "1MB"),
            ("REQUEST_LOG", "quiet"),
            ("RULES_KEY", " "),
            ("LEASE_FRACTION", "0"),
            ("RATE_LIMIT_WHEN_UNREACHABLE", "shut"),
        ]);
        assert_eq!(
            (
                bad.cache_ttl_ms,
                bad.max_body_bytes,
                bad.request_log,
                bad.rules_key.as_str()
            ),
            (DEFAULT_CACHE_TTL_MS, DEFAULT_MAX_BODY_BYTES, true, "rules")
        );
        assert_eq!(
            bad.problems,
            [
                "RULES_KEY \" \" is empty; using rules",
                "CACHE_TTL_SECONDS \"soon\" is not a number of seconds from 0 to 86400; using 30",
                "MAX_BODY_BYTES \"1MB\" is not a whole number of bytes from 1 to 104857600; using 1048576",
                "REQUEST_LOG \"quiet\" is neither on nor off; using on",
                "LEASE_FRACTION \"0\" is not a number over 0 and at most 1; using 0.1",
                "RATE_LIMIT_WHEN_UNREACHABLE \"shut\" is neither open nor closed; using open",
            ]
        );
        assert_eq!(
            bad.to_json(),
            json!({"rules_key": "rules", "cache_ttl_seconds": 30.0, "max_body_bytes": 1_048_576, "request_log": "on",
                   "lease_fraction": 0.1, "rate_limit_when_unreachable": "open", "spend_limit_when_unreachable": "closed",
                   "health_ttl_seconds": 5.0, "object_timeout_ms": 1000})
        );
        let negative = vars(&[("CACHE_TTL_SECONDS", "-1"), ("MAX_BODY_BYTES", "0")]);
        assert_eq!(negative.problems.len(), 2);
    }

    #[test]
    fn where_the_admin_apis_traffic_queries_go() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_vars(move |name| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        let set = vars(&[
            ("ANALYTICS_SQL_URL", "http://127.0.0.1:9999/client/v4/"),
            ("ANALYTICS_DATASET", "other_dataset"),
        ]);
        assert_eq!(set.analytics_api_base, "http://127.0.0.1:9999/client/v4");
        assert_eq!(set.analytics_dataset, "other_dataset");
        assert!(set.problems.is_empty());
        let bad = vars(&[
            ("ANALYTICS_SQL_URL", "ftp://x"),
            ("ANALYTICS_DATASET", "x; DROP"),
        ]);
        assert_eq!(bad.analytics_api_base, DEFAULT_ANALYTICS_API_BASE);
        assert_eq!(bad.analytics_dataset, DEFAULT_ANALYTICS_DATASET);
        assert_eq!(bad.problems.len(), 2);
    }
}
