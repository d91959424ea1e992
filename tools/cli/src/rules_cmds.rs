//! `validate`, `explain` and `schema`: the Worker's own core, run on the operator's machine, so a
//! document that passes here passes in the Worker, and explain answers exactly as the endpoint does.

use serde_json::json;
use taskrouter::chat::request::parse_chat;
use taskrouter::decide::explain::explain;
use taskrouter::http::Body;
use taskrouter::ports::SeededRandom;
use taskrouter::rules::{parse_rules, rules_schema, Rules};

/// Exit codes scripts can rely on.
pub const OK: i32 = 0;
pub const INVALID: i32 = 1;
pub const USAGE: i32 = 2;

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn load(path: &str) -> Result<Rules, (i32, String)> {
    let text = read(path).map_err(|e| (USAGE, e))?;
    parse_rules(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        (
            INVALID,
            format!("{path}: {} error(s)\n{}", errors.len(), lines.join("\n")),
        )
    })
}

/// Colour when writing to a terminal, unless `NO_COLOR` is set.
fn colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// One error as a compiler would show it: the message, where it stands, and the line underlined.
pub fn diagnostic(file: &str, text: &str, e: &taskrouter::rules::RulesError) -> String {
    let (red, blue, bold, reset) = if colour() {
        ("\x1b[31m", "\x1b[34m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let mut out = format!("{red}{bold}error{reset}{bold}: {e}{reset}\n");
    let at = if e.path.is_empty() {
        None
    } else {
        crate::locate::span(text, &e.path)
    };
    if let Some((start, end)) = at {
        let (line, col) = crate::locate::line_col(text, start);
        let source = text.lines().nth(line - 1).unwrap_or("");
        let width = line.to_string().len();
        let len = text[start..end.min(text.len())]
            .lines()
            .next()
            .map_or(1, |l| l.chars().count())
            .max(1);
        let pad = " ".repeat(width);
        out.push_str(&format!("{blue}{pad}--> {reset}{file}:{line}:{col}\n"));
        out.push_str(&format!("{blue}{pad} |{reset}\n"));
        out.push_str(&format!("{blue}{line} |{reset} {source}\n"));
        let caret_pad = " ".repeat(source.chars().take(col - 1).count());
        out.push_str(&format!(
            "{blue}{pad} |{reset} {caret_pad}{red}{}{reset}\n",
            "^".repeat(len)
        ));
    }
    out
}

/// `validate <file> [--json]`: every error with its path; exit 1 when invalid.
pub fn validate(path: &str, as_json: bool) -> i32 {
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("taskrouter: {e}");
            return USAGE;
        }
    };
    let result = parse_rules(&text);
    if as_json {
        let out = match &result {
            Ok(r) => {
                json!({"valid": true, "version": r.version, "routes": r.routes.len(), "models": r.models.len()})
            }
            Err(errors) => json!({"valid": false, "errors": errors.iter()
                .map(|e| json!({"path": e.path, "message": e.message})).collect::<Vec<_>>()}),
        };
        out!("{out}");
    } else {
        match &result {
            Ok(r) => out!(
                "{path}: valid (version {}, {} providers, {} models, {} routes)",
                r.version,
                r.providers.len(),
                r.models.len(),
                r.routes.len()
            ),
            Err(errors) => {
                eprintln!("{path}: {} error(s)", errors.len());
                for e in errors {
                    eprint!("{}", diagnostic(path, &text, e));
                }
            }
        }
    }
    if result.is_ok() {
        OK
    } else {
        INVALID
    }
}

/// `explain <rules> <request.json> [--metadata JSON]`: the decision trace, as the endpoint gives it.
pub fn explain_cmd(rules_path: &str, request_path: &str, metadata: Option<&str>) -> i32 {
    let rules = match load(rules_path) {
        Ok(r) => r,
        Err((code, msg)) => {
            eprintln!("{msg}");
            return code;
        }
    };
    let body = match read(request_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("taskrouter: {e}");
            return USAGE;
        }
    };
    let chat = match parse_chat(&Body::Bytes(body.into_bytes()), metadata, usize::MAX) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "taskrouter: {request_path}: {} ({})",
                e.message,
                e.code.code()
            );
            return USAGE;
        }
    };
    let mut headers = Vec::new();
    if let Some(m) = metadata {
        headers.push(("x-router-metadata".to_string(), m.to_string()));
    }
    // Load-balancing draws are random in the Worker; a fixed seed makes the CLI repeatable.
    match explain(&rules, &chat, &headers, &SeededRandom::new(1)) {
        Ok(out) => {
            out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            OK
        }
        Err(e) => {
            out!(
                "{}",
                json!({"error": {"message": e.message, "code": e.code.code()}})
            );
            INVALID
        }
    }
}

pub fn schema() -> i32 {
    out!("{}", rules_schema());
    OK
}

/// The JSON value of a `--flag value` pair, if given.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

pub fn has(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}
