//! `report`: the ready analytics queries of docs/analytics.md, run through the Workers Analytics
//! Engine SQL API, printed as tables, and optionally drawn as a PNG chart of cost and p95 latency
//! per task over time. The queries are the Worker's own (`taskrouter::record::queries`, shared
//! with the admin API's `GET /admin/traffic`); every one weights rows by `_sample_interval`, so
//! sampled data counts right.

use serde_json::{Map, Value};
use std::time::Duration;

use taskrouter::record::queries::{
    check_dataset, render, since_interval, DEFAULT_DATASET, OVER_TIME, QUERIES,
};

/// A query's answer: its column names in order, and its rows.
pub type Table = (Vec<String>, Vec<Map<String, Value>>);

/// The SQL API, authenticated by an API token with Account Analytics Read.
pub struct SqlApi {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl SqlApi {
    /// From `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_TOKEN` and (for tests) `CLOUDFLARE_API_BASE`.
    pub fn from_env() -> Result<SqlApi, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let account = var("CLOUDFLARE_ACCOUNT_ID").ok_or("CLOUDFLARE_ACCOUNT_ID is not set")?;
        let token = var("CLOUDFLARE_API_TOKEN").ok_or("CLOUDFLARE_API_TOKEN is not set")?;
        let base = var("CLOUDFLARE_API_BASE")
            .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into());
        if !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("CLOUDFLARE_ACCOUNT_ID is not an account id".into());
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Ok(SqlApi {
            url: format!(
                "{}/accounts/{account}/analytics_engine/sql",
                base.trim_end_matches('/')
            ),
            token,
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// Run one query; its rows as objects, columns in the order the API lists them.
    pub fn query(&self, sql: &str) -> Result<Table, String> {
        let mut response = self
            .agent
            .post(&self.url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .send(sql)
            .map_err(|e| format!("the SQL API could not be reached: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("reading the SQL API's answer failed: {e}"))?;
        if !(200..300).contains(&status) {
            let short: String = text.chars().take(300).collect();
            return Err(format!("the SQL API answered HTTP {status}: {short}"));
        }
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the SQL API's answer is not JSON: {e}"))?;
        let columns = doc["meta"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let rows = doc["data"]
            .as_array()
            .map(|d| d.iter().filter_map(|r| r.as_object().cloned()).collect())
            .unwrap_or_default();
        Ok((columns, rows))
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.abs() >= 100.0 => format!("{f:.1}"),
            (None, Some(f)) => format!("{f:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            (None, None) => n.to_string(),
        },
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// A plain text table, numbers right-aligned.
pub fn table(columns: &[String], rows: &[Map<String, Value>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = columns
        .iter()
        .map(|c| !rows.is_empty() && rows.iter().all(|r| r.get(c).is_none_or(Value::is_number)))
        .collect();
    let line = |vals: &[String]| {
        vals.iter()
            .enumerate()
            .map(|(i, v)| {
                if numeric[i] {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![
        line(columns),
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    ];
    out.extend(cells.iter().map(|r| line(r)));
    if rows.is_empty() {
        out.push("(no data)".into());
    }
    out.join("\n")
}

/// `report [--since 7d] [--dataset taskrouter_requests] [--chart out.png] [--json] [--print-sql]`.
pub fn report(args: &[String]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("taskrouter report: {e}");
            1
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    use crate::rules_cmds::{flag, has};
    let dataset = flag(args, "--dataset").unwrap_or(DEFAULT_DATASET);
    check_dataset(dataset)?;
    let since =
        since_interval(flag(args, "--since").unwrap_or("7d")).map_err(|e| format!("--{e}"))?;
    if has(args, "--print-sql") {
        for q in QUERIES.iter().chain([&OVER_TIME]) {
            out!("-- {}\n{}\n", q.title, render(q.sql, dataset, &since));
        }
        return Ok(());
    }
    let api = SqlApi::from_env()?;
    let as_json = has(args, "--json");
    let mut json_out = Map::new();
    for q in &QUERIES {
        let (mut columns, mut rows) = api.query(&render(q.sql, dataset, &since))?;
        if q.name == "outcomes" {
            // The share of all requests each outcome has (the error rate of each kind).
            let total: f64 = rows
                .iter()
                .filter_map(|r| r.get("requests").and_then(Value::as_f64))
                .sum();
            for r in &mut rows {
                let n = r.get("requests").and_then(Value::as_f64).unwrap_or(0.0);
                r.insert(
                    "share".into(),
                    Value::from(if total > 0.0 { n / total } else { 0.0 }),
                );
            }
            columns.push("share".into());
        }
        if as_json {
            json_out.insert(
                q.name.into(),
                Value::Array(rows.into_iter().map(Value::Object).collect()),
            );
        } else {
            out!("{}\n{}\n", q.title, table(&columns, &rows));
        }
    }
    if let Some(path) = flag(args, "--chart") {
        let (_, rows) = api.query(&render(OVER_TIME.sql, dataset, &since))?;
        let png = crate::chart::render(&rows)?;
        std::fs::write(path, png).map_err(|e| format!("cannot write {path}: {e}"))?;
        if !as_json {
            out!("chart written to {path}");
        }
    }
    if as_json {
        out!("{}", Value::Object(json_out));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables() {
        let rows = vec![
            json!({"task": "faq", "requests": 12, "cost_usd": 0.00012})
                .as_object()
                .cloned()
                .unwrap(),
            json!({"task": "", "requests": 3, "cost_usd": 1234.5678})
                .as_object()
                .cloned()
                .unwrap(),
        ];
        let cols = vec![
            "task".to_string(),
            "requests".to_string(),
            "cost_usd".to_string(),
        ];
        assert_eq!(
            table(&cols, &rows),
            "task  requests  cost_usd\n----  --------  --------\nfaq         12   0.00012\n-            3    1234.6"
        );
        assert!(table(&cols, &[]).ends_with("(no data)"));
    }
}
