//! The workload the benchmarks share: a rules document of 100 routes and 2,000 keywords over 20
//! tasks (the harness in perf/ builds the same one for the Worker), and 8 KB prompts.

use serde_json::{json, Value};

pub const WORDS: [&str; 24] = [
    "deploy", "invoice", "latency", "refund", "kernel", "tensor", "ledger", "cursor", "webhook",
    "schema", "quota", "tariff", "sprint", "backlog", "payload", "cluster", "shard", "replica",
    "token", "vector", "lambda", "socket", "parser", "cache",
];

/// Keyword 0 of task13 and a ticket number its regex matches.
pub const PLANTED: &str = "backlog deploy1300 ticket-1342 ";

/// 20 tasks x 100 keywords (two-word phrases) and a regex each; 100 routes over tasks and metadata.
pub fn big_rules() -> String {
    let mut tasks = serde_json::Map::new();
    for t in 0..20 {
        let keywords: Vec<String> = (0..100)
            .map(|k| format!("{} {}{}", WORDS[(t + k) % 24], WORDS[k % 24], t * 100 + k))
            .collect();
        tasks.insert(
            format!("task{t}"),
            json!({"keywords": keywords, "regex": [format!("(?i)\\bticket-{t}\\d+\\b")]}),
        );
    }
    let routes: Vec<Value> = (0..100)
        .map(|r| {
            json!({"name": format!("route{r}"),
                   "when": {"task": format!("task{}", r % 20), "metadata.tier": {"$in": [format!("tier{}", r % 5)]},
                            "estimated_tokens": {"$lt": 100_000}},
                   "then": {"fallback": ["strong", "fast"]}})
        })
        .collect();
    json!({
        "version": 1,
        "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
        "models": {"fast": {"provider": "p", "model": "f"}, "strong": {"provider": "p", "model": "s"}},
        "tasks": tasks,
        "routes": routes,
        "default": "fast"
    })
    .to_string()
}

pub fn prose_8k() -> String {
    const PROSE: &str = "Our team has been reviewing the quarterly roadmap and we would like a short summary of \
        the open questions. The customers who wrote in last week mostly asked about onboarding, pricing \
        tiers and how the export feature handles large files. Could you draft a friendly reply that \
        explains the next steps, mentions the timeline we agreed on, and invites them to the webinar? ";
    let mut text = String::new();
    while text.len() < 8 * 1024 {
        text.push_str(PROSE);
        if text.len() > 4 * 1024 && !text.contains(PLANTED) {
            text.push_str(PLANTED);
        }
    }
    text
}

pub fn adversarial_8k() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 8 * 1024 {
        text.push_str(WORDS[i % 24]);
        text.push(' ');
        if i % 97 == 0 {
            text.push_str(PLANTED);
        }
        i += 1;
    }
    text
}
