//! The ready Analytics Engine SQL queries over the data point of `analytics` (docs/analytics.md):
//! one copy for the CLI's `report` and the admin API's `GET /admin/traffic`. Every query weights
//! rows by `_sample_interval`, so counts, sums and percentiles stay right when Analytics Engine
//! samples; `{dataset}`, `{since}` (and `{bucket}`) are filled in by `render` from checked values
//! only (`since_interval`, `check_dataset`, `bucket_for`), never from raw input.

/// The dataset's default name, and the check a name passes before it goes into the SQL text
/// (the var `ANALYTICS_DATASET` is read with the same check).
pub use crate::settings::{check_dataset, DEFAULT_ANALYTICS_DATASET as DEFAULT_DATASET};

pub struct Query {
    pub name: &'static str,
    pub title: &'static str,
    /// With `{dataset}` and `{since}` to fill in.
    pub sql: &'static str,
}

pub const QUERIES: [Query; 5] = [
    COST_BY_TASK_MODEL,
    Query {
        name: "fallback_by_provider",
        title: "Fallback rate by serving provider",
        sql: "SELECT blob4 AS provider, SUM(_sample_interval) AS requests, \
              sumIf(_sample_interval, blob7 = 'yes') / SUM(_sample_interval) AS fallback_rate \
              FROM {dataset} WHERE timestamp > NOW() - {since} AND blob4 != '' \
              GROUP BY provider ORDER BY fallback_rate DESC FORMAT JSON",
    },
    Query {
        name: "outcomes",
        title: "Requests by outcome (errors by kind)",
        sql: "SELECT blob6 AS outcome, SUM(_sample_interval) AS requests \
              FROM {dataset} WHERE timestamp > NOW() - {since} \
              GROUP BY outcome ORDER BY requests DESC FORMAT JSON",
    },
    Query {
        name: "latency_by_model",
        title: "Latency percentiles by model (successful requests, ms)",
        sql: "SELECT blob5 AS model, SUM(_sample_interval) AS requests, \
              quantileExactWeighted(0.5, double1, _sample_interval) AS p50_ms, \
              quantileExactWeighted(0.9, double1, _sample_interval) AS p90_ms, \
              quantileExactWeighted(0.99, double1, _sample_interval) AS p99_ms \
              FROM {dataset} WHERE timestamp > NOW() - {since} AND blob6 = 'ok' \
              GROUP BY model ORDER BY requests DESC FORMAT JSON",
    },
    Query {
        name: "top_callers",
        title: "Top callers by cost",
        sql: "SELECT index1 AS caller, SUM(_sample_interval) AS requests, \
              SUM(_sample_interval * double8) AS cost_usd \
              FROM {dataset} WHERE timestamp > NOW() - {since} \
              GROUP BY caller ORDER BY cost_usd DESC LIMIT 10 FORMAT JSON",
    },
];

pub const COST_BY_TASK_MODEL: Query = Query {
    name: "cost_by_task_model",
    title: "Cost and requests by task and model",
    sql: "SELECT blob1 AS task, blob5 AS model, SUM(_sample_interval) AS requests, \
          SUM(_sample_interval * double8) AS cost_usd, SUM(_sample_interval * double5) AS input_tokens, \
          SUM(_sample_interval * double6) AS output_tokens \
          FROM {dataset} WHERE timestamp > NOW() - {since} \
          GROUP BY task, model ORDER BY cost_usd DESC FORMAT JSON",
};

/// The CLI's chart: cost and p95 latency per task per hour.
pub const OVER_TIME: Query = Query {
    name: "task_cost_latency_over_time",
    title: "Cost and p95 latency per task over time",
    sql: "SELECT toStartOfInterval(timestamp, INTERVAL '1' HOUR) AS t, blob1 AS task, \
          SUM(_sample_interval * double8) AS cost_usd, \
          quantileExactWeighted(0.95, double1, _sample_interval) AS p95_ms \
          FROM {dataset} WHERE timestamp > NOW() - {since} \
          GROUP BY t, task ORDER BY t FORMAT JSON",
};

/// The admin API's chart data: requests, cost and tokens per task and model per time bucket
/// (`{bucket}` from `bucket_for`).
pub const TRAFFIC_OVER_TIME: Query = Query {
    name: "traffic_over_time",
    title: "Requests, cost and tokens per task and model over time",
    sql: "SELECT toStartOfInterval(timestamp, {bucket}) AS t, blob1 AS task, blob5 AS model, \
          SUM(_sample_interval) AS requests, SUM(_sample_interval * double8) AS cost_usd, \
          SUM(_sample_interval * double5) AS input_tokens, SUM(_sample_interval * double6) AS output_tokens \
          FROM {dataset} WHERE timestamp > NOW() - {since} \
          GROUP BY t, task, model ORDER BY t FORMAT JSON",
};

/// Latency percentiles of all successful requests.
pub const LATENCY: Query = Query {
    name: "latency",
    title: "Latency percentiles (successful requests, ms)",
    sql: "SELECT SUM(_sample_interval) AS requests, \
          quantileExactWeighted(0.5, double1, _sample_interval) AS p50_ms, \
          quantileExactWeighted(0.95, double1, _sample_interval) AS p95_ms \
          FROM {dataset} WHERE timestamp > NOW() - {since} AND blob6 = 'ok' FORMAT JSON",
};

fn since_error(since: &str) -> String {
    format!("since takes a number and d, h or m (7d, 24h, 30m), not {since:?}")
}

/// `7d`, `24h`, `30m` in minutes (1 to 4 digits).
pub fn since_minutes(since: &str) -> Result<u64, String> {
    if !since.is_ascii() {
        return Err(since_error(since));
    }
    let (n, unit) = since.split_at(since.len().saturating_sub(1));
    let per = match unit {
        "d" => 1440,
        "h" => 60,
        "m" => 1,
        _ => return Err(since_error(since)),
    };
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(since_error(since));
    }
    n.parse::<u64>()
        .map(|n| n * per)
        .map_err(|_| since_error(since))
}

/// `7d` → `INTERVAL '7' DAY`, `24h` → `INTERVAL '24' HOUR`, `30m` → `INTERVAL '30' MINUTE`.
pub fn since_interval(since: &str) -> Result<String, String> {
    since_minutes(since)?;
    let (n, unit) = since.split_at(since.len() - 1);
    let unit = match unit {
        "d" => "DAY",
        "h" => "HOUR",
        _ => "MINUTE",
    };
    Ok(format!("INTERVAL '{n}' {unit}"))
}

/// The time bucket for charts over `minutes`: the smallest of 1, 5 and 15 minutes, 1 and 6 hours
/// and 1 day giving at most 200 buckets. Its label (`15m`) and its SQL interval.
pub fn bucket_for(minutes: u64) -> (&'static str, &'static str) {
    const BUCKETS: [(u64, &str, &str); 6] = [
        (1, "1m", "INTERVAL '1' MINUTE"),
        (5, "5m", "INTERVAL '5' MINUTE"),
        (15, "15m", "INTERVAL '15' MINUTE"),
        (60, "1h", "INTERVAL '1' HOUR"),
        (360, "6h", "INTERVAL '6' HOUR"),
        (1440, "1d", "INTERVAL '1' DAY"),
    ];
    let (_, label, sql) = BUCKETS
        .iter()
        .find(|(m, _, _)| minutes.div_ceil(*m) <= 200)
        .unwrap_or(&BUCKETS[BUCKETS.len() - 1]);
    (label, sql)
}

/// The query with its dataset and interval (and, for `TRAFFIC_OVER_TIME`, the bucket).
pub fn render(sql: &str, dataset: &str, since: &str) -> String {
    sql.replace("{dataset}", dataset).replace("{since}", since)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&Query; 8] = [
        &QUERIES[0],
        &QUERIES[1],
        &QUERIES[2],
        &QUERIES[3],
        &QUERIES[4],
        &OVER_TIME,
        &TRAFFIC_OVER_TIME,
        &LATENCY,
    ];

    #[test]
    fn since_and_dataset_are_checked() {
        assert_eq!(since_interval("7d").unwrap(), "INTERVAL '7' DAY");
        assert_eq!(since_interval("24h").unwrap(), "INTERVAL '24' HOUR");
        assert_eq!(since_interval("30m").unwrap(), "INTERVAL '30' MINUTE");
        assert_eq!(since_minutes("2h").unwrap(), 120);
        for bad in ["7", "d", "7w", "1'; DROP", "99999d", "", "é"] {
            assert!(since_interval(bad).is_err(), "{bad}");
        }
        assert!(check_dataset("taskrouter_requests").is_ok());
        assert!(check_dataset("x; SELECT").is_err());
    }

    #[test]
    fn buckets_keep_charts_readable() {
        assert_eq!(bucket_for(30).0, "1m");
        assert_eq!(bucket_for(24 * 60).0, "15m");
        assert_eq!(bucket_for(7 * 1440).0, "1h");
        assert_eq!(bucket_for(30 * 1440).0, "6h");
        assert_eq!(bucket_for(9999 * 1440).0, "1d");
    }

    #[test]
    fn every_query_weights_by_sample_interval() {
        for q in ALL {
            assert!(q.sql.contains("_sample_interval"), "{}", q.name);
            assert!(
                !q.sql.contains("count()"),
                "{}: count() ignores sampling",
                q.name
            );
        }
    }

    #[test]
    fn the_docs_show_the_queries_run() {
        let docs = include_str!("../../docs/analytics.md");
        for q in ALL {
            let sql = render(q.sql, DEFAULT_DATASET, "INTERVAL '7' DAY")
                .replace("{bucket}", "INTERVAL '1' HOUR");
            assert!(
                docs.contains(&sql),
                "docs/analytics.md lacks the {} query:\n{sql}",
                q.name
            );
        }
    }
}
