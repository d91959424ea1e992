//! `GET /admin/traffic?since=24h`: the analytics the Worker wrote, read back through the Workers
//! Analytics Engine SQL API and shaped for charts (docs/analytics.md#the-admin-apis-traffic).
//! The queries are the shared ones (`record::queries`, the CLI's `report` runs them too), each
//! weighted by `_sample_interval`; they go out through the `Upstream` port as
//! `POST <base>/accounts/<account>/analytics_engine/sql` with the token as a bearer, where the
//! account and token are the Worker secrets `CLOUDFLARE_ACCOUNT_ID` and `CLOUDFLARE_API_TOKEN`
//! and `<base>` is `https://api.cloudflare.com/client/v4` unless the var `ANALYTICS_SQL_URL` says
//! otherwise (`Settings::analytics_api_base`).
//!
//! Errors: a `since` that is not `<n>m|h|d` is 400 `invalid_request`; missing secrets are 503
//! `analytics_unconfigured` naming them; the SQL API failing is 502 `analytics_query_failed`
//! with its own message (the caller is the operator, and the message is what they need).

use crate::error::{ApiError, ErrorCode};
use crate::http::{Incoming, Reply};
use crate::ports::{PortSet, Secrets, Upstream, UpstreamRequest};
use crate::record::queries::{
    bucket_for, render, since_interval, since_minutes, Query, COST_BY_TASK_MODEL, LATENCY, QUERIES,
    TRAFFIC_OVER_TIME,
};
use crate::settings::Settings;
use futures_util::future::try_join5;
use serde_json::{json, Map, Value};

pub const ACCOUNT_SECRET: &str = "CLOUDFLARE_ACCOUNT_ID";
pub const TOKEN_SECRET: &str = "CLOUDFLARE_API_TOKEN";
const DEFAULT_SINCE: &str = "24h";
/// Each query's wait for the SQL API, head and body alike.
const QUERY_TIMEOUT_MS: u64 = 30_000;
/// How much of the SQL API's error text is passed on.
const MAX_ERROR_CHARS: usize = 300;

/// A query's rows, as objects.
type Rows = Vec<Map<String, Value>>;

fn failed(message: String) -> ApiError {
    ApiError::new(ErrorCode::AnalyticsQueryFailed, message)
}

/// The SQL API's URL and token, from the secrets (503 naming what is missing).
fn endpoint(secrets: &impl Secrets, settings: &Settings) -> Result<(String, String), ApiError> {
    let account = secrets.get(ACCOUNT_SECRET);
    let token = secrets.get(TOKEN_SECRET);
    let (Some(account), Some(token)) = (account.as_ref(), token.as_ref()) else {
        let missing: Vec<&str> = [(ACCOUNT_SECRET, &account), (TOKEN_SECRET, &token)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| *name)
            .collect();
        return Err(ApiError::new(
            ErrorCode::AnalyticsUnconfigured,
            format!(
                "traffic needs the Analytics Engine SQL API: set the Worker secret(s) {} (an API token with Account Analytics Read)",
                missing.join(" and ")
            ),
        ));
    };
    let account = account.expose();
    if account.is_empty() || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::new(
            ErrorCode::AnalyticsUnconfigured,
            format!("the Worker secret {ACCOUNT_SECRET} is not an account id"),
        ));
    }
    let base = settings.analytics_api_base.trim_end_matches('/');
    let url = format!("{base}/accounts/{account}/analytics_engine/sql");
    Ok((url, token.expose().to_string()))
}

/// The message of a failed answer: Cloudflare's `errors[0].message`, else the start of the text.
fn upstream_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        v.pointer("/errors/0/message")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let message = from_json.unwrap_or_else(|| text.trim().to_string());
    message.chars().take(MAX_ERROR_CHARS).collect()
}

/// Run one query; its rows.
async fn query<U: Upstream>(
    upstream: &U,
    (url, token): &(String, String),
    sql: String,
) -> Result<Rows, ApiError> {
    let request = UpstreamRequest {
        url: url.clone(),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "text/plain".into()),
        ],
        body: sql.into_bytes(),
    };
    let unreachable = |e: crate::ports::FetchError| {
        failed(match e {
            crate::ports::FetchError::Timeout => format!(
                "the Analytics Engine SQL API did not answer within {} s",
                QUERY_TIMEOUT_MS / 1000
            ),
            crate::ports::FetchError::Network(_) | crate::ports::FetchError::NotBound(_) => {
                "the Analytics Engine SQL API could not be reached".to_string()
            }
        })
    };
    let response = upstream
        .send(request, QUERY_TIMEOUT_MS)
        .await
        .map_err(unreachable)?;
    let status = response.status;
    let body = upstream
        .read_all(response.body, QUERY_TIMEOUT_MS)
        .await
        .map_err(unreachable)?;
    if !(200..300).contains(&status) {
        return Err(failed(format!(
            "the Analytics Engine SQL API answered HTTP {status}: {}",
            upstream_message(&body)
        )));
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| {
        failed(format!(
            "the Analytics Engine SQL API's answer is not JSON: {e}"
        ))
    })?;
    Ok(doc["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default())
}

/// A number cell (the SQL API may send 64-bit integers as strings).
fn num(row: &Map<String, Value>, column: &str) -> f64 {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// A count: whole (weights are whole numbers; sums of them too).
fn count(row: &Map<String, Value>, column: &str) -> u64 {
    num(row, column).max(0.0).round() as u64
}

fn text(row: &Map<String, Value>, column: &str) -> String {
    match row.get(column) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Requests, cost and tokens of a row, under `label` = the row's `column`.
fn usage(row: &Map<String, Value>, label: &str, value: String) -> Value {
    json!({
        label: value,
        "requests": count(row, "requests"),
        "cost_usd": num(row, "cost_usd"),
        "input_tokens": count(row, "input_tokens"),
        "output_tokens": count(row, "output_tokens"),
    })
}

/// The rows of `cost_by_task_model` summed by `column` (`task` or `model`), most costly first.
fn totals_by(rows: &Rows, column: &str) -> Vec<Value> {
    let mut sums: Vec<(String, [f64; 4])> = Vec::new();
    for row in rows {
        let key = text(row, column);
        let add = [
            num(row, "requests"),
            num(row, "cost_usd"),
            num(row, "input_tokens"),
            num(row, "output_tokens"),
        ];
        let i = match sums.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                sums.push((key, [0.0; 4]));
                sums.len() - 1
            }
        };
        for (s, a) in sums[i].1.iter_mut().zip(add) {
            *s += a;
        }
    }
    sums.sort_by(|a, b| b.1[1].total_cmp(&a.1[1]).then(b.1[0].total_cmp(&a.1[0])));
    sums.into_iter()
        .map(|(key, [requests, cost, input, output])| {
            json!({
                column: key,
                "requests": requests.round() as u64,
                "cost_usd": cost,
                "input_tokens": input.round() as u64,
                "output_tokens": output.round() as u64,
            })
        })
        .collect()
}

/// The answer from each query's rows.
pub struct Answers {
    pub over_time: Rows,
    pub by_task_model: Rows,
    pub outcomes: Rows,
    pub fallback_by_provider: Rows,
    pub latency: Rows,
}

/// The chart data (docs/analytics.md#the-admin-apis-traffic).
pub fn shape(since: &str, bucket: &str, a: &Answers) -> Value {
    let over_time: Vec<Value> = a
        .over_time
        .iter()
        .map(|r| {
            let mut point = usage(r, "t", text(r, "t"));
            point["task"] = json!(text(r, "task"));
            point["model"] = json!(text(r, "model"));
            point
        })
        .collect();
    let total: f64 = a.outcomes.iter().map(|r| num(r, "requests")).sum();
    let outcomes: Vec<Value> = a
        .outcomes
        .iter()
        .map(|r| {
            let n = num(r, "requests");
            let share = if total > 0.0 { n / total } else { 0.0 };
            json!({"outcome": text(r, "outcome"), "requests": count(r, "requests"), "share": share})
        })
        .collect();
    let served: f64 = a
        .fallback_by_provider
        .iter()
        .map(|r| num(r, "requests"))
        .sum();
    let fell_back: f64 = a
        .fallback_by_provider
        .iter()
        .map(|r| num(r, "requests") * num(r, "fallback_rate"))
        .sum();
    let by_provider: Vec<Value> = a
        .fallback_by_provider
        .iter()
        .map(|r| {
            json!({"provider": text(r, "provider"), "requests": count(r, "requests"),
                   "fallback_rate": num(r, "fallback_rate")})
        })
        .collect();
    // Percentiles of no requests are none, not zero.
    let latency = match a.latency.first().filter(|r| num(r, "requests") > 0.0) {
        Some(r) => json!({"p50_ms": num(r, "p50_ms"), "p95_ms": num(r, "p95_ms")}),
        None => json!({"p50_ms": null, "p95_ms": null}),
    };
    json!({
        "since": since,
        "bucket": bucket,
        "over_time": over_time,
        "by_task": totals_by(&a.by_task_model, "task"),
        "by_model": totals_by(&a.by_task_model, "model"),
        "outcomes": outcomes,
        "fallback_rate": if served > 0.0 { fell_back / served } else { 0.0 },
        "fallback_by_provider": by_provider,
        "latency": latency,
    })
}

/// The shared query named `name` (its SQL), from `QUERIES`.
fn shared(name: &str) -> Result<&'static Query, ApiError> {
    QUERIES
        .iter()
        .find(|q| q.name == name)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, format!("no query {name}")))
}

/// `GET /admin/traffic?since=24h`.
pub(super) async fn get<P: PortSet, B>(
    req: &Incoming,
    ports: &P,
    settings: &Settings,
) -> Result<Reply<B>, ApiError> {
    // (1) Check the window before anything goes out.
    let since = req
        .query_param("since")
        .unwrap_or_else(|| DEFAULT_SINCE.to_string());
    let bad_since = |e: String| ApiError::new(ErrorCode::InvalidRequest, e);
    let minutes = since_minutes(&since).map_err(bad_since)?;
    let interval = since_interval(&since).map_err(bad_since)?;
    let (bucket, bucket_sql) = bucket_for(minutes);
    // (2) The SQL API's address and token.
    let api = endpoint(ports.secrets(), settings)?;
    // (3) The queries, side by side: one SQL API round trip of waiting instead of five (the
    // Worker's subrequests count the same either way); the first failure answers.
    let dataset = settings.analytics_dataset.as_str();
    let sql = |q: &Query| render(q.sql, dataset, &interval).replace("{bucket}", bucket_sql);
    let upstream = ports.upstream();
    let (outcomes_sql, fallback_sql) = (
        sql(shared("outcomes")?),
        sql(shared("fallback_by_provider")?),
    );
    let (over_time, by_task_model, outcomes, fallback_by_provider, latency) = try_join5(
        query(upstream, &api, sql(&TRAFFIC_OVER_TIME)),
        query(upstream, &api, sql(&COST_BY_TASK_MODEL)),
        query(upstream, &api, outcomes_sql),
        query(upstream, &api, fallback_sql),
        query(upstream, &api, sql(&LATENCY)),
    )
    .await?;
    let answers = Answers {
        over_time,
        by_task_model,
        outcomes,
        fallback_by_provider,
        latency,
    };
    // (4) Shape them for charts.
    Ok(Reply::json(200, &shape(&since, bucket, &answers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: Value) -> Rows {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().cloned().unwrap())
            .collect()
    }

    #[test]
    fn shaped_for_charts() {
        let a = Answers {
            over_time: rows(
                json!([{"t": "2026-12-02 10:00:00", "task": "faq", "model": "m1",
                "requests": "3", "cost_usd": 0.5, "input_tokens": 30, "output_tokens": 9}]),
            ),
            by_task_model: rows(json!([
                {"task": "faq", "model": "m1", "requests": 3, "cost_usd": 0.5, "input_tokens": 30, "output_tokens": 9},
                {"task": "faq", "model": "m2", "requests": 1, "cost_usd": 1.0, "input_tokens": 10, "output_tokens": 1},
                {"task": "", "model": "m1", "requests": 2, "cost_usd": 0.1, "input_tokens": 5, "output_tokens": 5}])),
            outcomes: rows(
                json!([{"outcome": "ok", "requests": 3}, {"outcome": "upstream_error", "requests": 1}]),
            ),
            fallback_by_provider: rows(json!([
                {"provider": "a", "requests": 3, "fallback_rate": 0.0},
                {"provider": "b", "requests": 1, "fallback_rate": 1.0}])),
            latency: rows(json!([{"requests": 4, "p50_ms": 120.5, "p95_ms": 900}])),
        };
        let v = shape("24h", "15m", &a);
        assert_eq!(v["over_time"][0]["requests"], 3, "a count sent as a string");
        assert_eq!(v["over_time"][0]["task"], "faq");
        assert_eq!(v["by_task"][0]["task"], "faq");
        assert_eq!(v["by_task"][0]["requests"], 4);
        assert_eq!(v["by_task"][0]["cost_usd"], 1.5);
        assert_eq!(v["by_model"][0]["model"], "m2", "most costly first");
        assert_eq!(v["by_model"][1]["requests"], 5);
        assert_eq!(v["outcomes"][1]["share"], 0.25);
        assert_eq!(v["fallback_rate"], 0.25);
        assert_eq!(v["latency"]["p95_ms"], 900.0);
        let empty = Answers {
            over_time: vec![],
            by_task_model: vec![],
            outcomes: vec![],
            fallback_by_provider: vec![],
            latency: rows(json!([{"requests": 0, "p50_ms": 0, "p95_ms": 0}])),
        };
        let v = shape("30m", "1m", &empty);
        assert_eq!(v["fallback_rate"], 0.0);
        assert!(v["latency"]["p50_ms"].is_null());
    }

    #[test]
    fn upstream_messages() {
        let cf = br#"{"success": false, "errors": [{"code": 7003, "message": "bad account"}]}"#;
        assert_eq!(upstream_message(cf), "bad account");
        assert_eq!(
            upstream_message(b" syntax error at 1:7 "),
            "syntax error at 1:7"
        );
        assert_eq!(upstream_message(&[b'x'; 1000]).len(), MAX_ERROR_CHARS);
    }
}
