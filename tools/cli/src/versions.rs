//! `push`, `pull`, `diff`, `history` and `rollback`: rules versions in KV, managed with the same
//! functions as the Worker's admin API (`taskrouter::fronts::admin`), so both keep one layout.

use crate::kv_api::KvApi;
use crate::rules_cmds::{flag, INVALID, OK, USAGE};
use futures::executor::block_on;
use serde_json::Value;
use taskrouter::fronts::admin::{self, Refused};
use taskrouter::ports::CompiledIn;

const BASE: &str = "rules";

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

fn api() -> Result<KvApi, i32> {
    KvApi::from_env().map_err(|e| {
        eprintln!("taskrouter: {e}");
        USAGE
    })
}

fn refused(r: Refused, file: &str, text: &str) -> i32 {
    match r {
        Refused::Invalid(errors) => {
            eprintln!("refused: {} error(s)", errors.len());
            for e in errors {
                eprint!("{}", crate::rules_cmds::diagnostic(file, text, &e));
            }
        }
        Refused::Other(e) => eprintln!("refused: {} ({})", e.message, e.code.code()),
    }
    INVALID
}

pub fn push(file: &str) -> i32 {
    let Ok(text) = std::fs::read_to_string(file) else {
        eprintln!("taskrouter: cannot read {file}");
        return USAGE;
    };
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match block_on(admin::push(&kv, &CompiledIn, BASE, &text, now_ms())) {
        Ok(v) => {
            out!("pushed version {v}; it is live");
            OK
        }
        Err(r) => refused(r, file, &text),
    }
}

pub fn pull(args: &[String]) -> i32 {
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match block_on(admin::live(&kv, BASE)) {
        Ok(Some((text, _))) => match flag(args, "--out") {
            Some(path) => match std::fs::write(path, &text) {
                Ok(()) => OK,
                Err(e) => {
                    eprintln!("taskrouter: cannot write {path}: {e}");
                    USAGE
                }
            },
            None => {
                out!("{text}");
                OK
            }
        },
        Ok(None) => {
            eprintln!("taskrouter: no rules are stored yet");
            INVALID
        }
        Err(e) => {
            eprintln!("taskrouter: {}", e.message);
            INVALID
        }
    }
}

/// Pretty-printed with sorted keys, so formatting and key order make no difference.
fn normal(text: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => serde_json::to_string_pretty(&v)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => text.lines().map(str::to_string).collect(),
    }
}

/// A line diff (longest common subsequence): `-` live, `+` local.
pub fn line_diff(live: &[String], local: &[String]) -> Vec<String> {
    let (n, m) = (live.len(), local.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if live[i] == local[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && live[i] == local[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", local[j]));
            j += 1;
        } else {
            out.push(format!("- {}", live[i]));
            i += 1;
        }
    }
    out
}

pub fn diff(file: &str) -> i32 {
    let Ok(local) = std::fs::read_to_string(file) else {
        eprintln!("taskrouter: cannot read {file}");
        return USAGE;
    };
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    let live = match block_on(admin::live(&kv, BASE)) {
        Ok(l) => l.map(|(t, _)| t).unwrap_or_default(),
        Err(e) => {
            eprintln!("taskrouter: {}", e.message);
            return USAGE;
        }
    };
    let lines = line_diff(&normal(&live), &normal(&local));
    if lines.is_empty() {
        out!("{file} is the live version");
        return OK;
    }
    for l in lines {
        out!("{l}");
    }
    INVALID
}

pub fn history() -> i32 {
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match block_on(admin::change_log(&kv, BASE)) {
        Ok(log) => {
            for e in log {
                let at = e["at_ms"].as_f64().unwrap_or(0.0) / 1000.0;
                out!(
                    "{:<9} v{:<6} at {:.0}{}",
                    e["action"].as_str().unwrap_or(""),
                    e["version"],
                    at,
                    e["from"]
                        .as_u64()
                        .map(|f| format!(" (from v{f})"))
                        .unwrap_or_default()
                );
            }
            OK
        }
        Err(e) => {
            eprintln!("taskrouter: {}", e.message);
            INVALID
        }
    }
}

pub fn rollback(args: &[String]) -> i32 {
    let asked = match flag(args, "--version").map(str::parse::<u64>) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            eprintln!("taskrouter: --version takes a number");
            return USAGE;
        }
        None => None,
    };
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match block_on(admin::rollback(&kv, &CompiledIn, BASE, asked, now_ms())) {
        Ok((v, from)) => {
            out!(
                "version {v} is live again{}",
                from.map(|f| format!(" (was {f})")).unwrap_or_default()
            );
            OK
        }
        Err(r) => refused(r, "(stored version)", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_lines() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            line_diff(&s(&["a", "b", "c"]), &s(&["a", "x", "c"])),
            ["+ x", "- b"]
        );
        assert!(line_diff(&s(&["a"]), &s(&["a"])).is_empty());
        assert_eq!(
            normal(r#"{"b":1,"a":2}"#),
            normal("{\n  \"a\": 2, \"b\": 1}")
        );
    }
}
