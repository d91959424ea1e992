//! `keys create|list|revoke`: gateway keys, made, listed and revoked by the Worker's own code
//! (`taskrouter::access::keys`, which the admin API uses too). A key is random (the OS's source),
//! shown once, and stored in KV only as its SHA-256 under `gateway-key:<hex>`, with a name, the
//! routes and tasks it may use, and its request and spend limits (also as the key's KV metadata),
//! and in the id index. Revocation revokes every record with the id and takes effect within the
//! Worker's cache TTL plus up to 60 s of KV's edge cache. The CLI is not bound by a Worker's
//! limit on KV operations, so it reads every record without metadata (`ALL`).

use crate::kv_api::KvApi;
use crate::rules_cmds::{flag, has, INVALID, OK, USAGE};
use futures::executor::block_on;
use serde_json::{json, Value};
use taskrouter::access::auth::KeyRecord;
use taskrouter::access::keys::{self, KeyError, NewKey, KEY_BYTES};

/// No cap on records read one by one.
const ALL: usize = usize::MAX;

fn api() -> Result<KvApi, i32> {
    KvApi::from_env().map_err(|e| {
        eprintln!("taskrouter: {e}");
        USAGE
    })
}

fn list_of(v: Option<&str>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
}

fn message(e: KeyError) -> String {
    match e {
        KeyError::Invalid(m)
        | KeyError::Exists(m)
        | KeyError::NotFound(m)
        | KeyError::Incomplete(m) => m,
        KeyError::Store(e) => e.0,
    }
}

fn records(kv: &KvApi) -> Result<Vec<(String, KeyRecord)>, String> {
    let listing = block_on(keys::list(kv, ALL)).map_err(message)?;
    if listing.truncated {
        eprintln!(
            "taskrouter: only the first {} pages of keys are listed",
            keys::MAX_LIST_PAGES
        );
    }
    Ok(listing.records)
}

/// `keys create --name NAME [--id ID] [--routes a,b] [--tasks x,y] [--rpm N] [--spend-per-day USD] [--json]`
pub fn create(args: &[String]) -> i32 {
    let Some(name) = flag(args, "--name") else {
        eprintln!("taskrouter: keys create needs --name");
        return USAGE;
    };
    let mut bytes = [0u8; KEY_BYTES];
    if getrandom::fill(&mut bytes).is_err() {
        eprintln!("taskrouter: no random source");
        return USAGE;
    }
    let parse_num = |f: &str| flag(args, f).map(str::parse::<f64>);
    let (rpm, spend) = match (parse_num("--rpm"), parse_num("--spend-per-day")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            eprintln!("taskrouter: --rpm and --spend-per-day take numbers");
            return USAGE;
        }
        (r, s) => (r.and_then(Result::ok), s.and_then(Result::ok)),
    };
    let new = NewKey {
        name: name.to_string(),
        id: flag(args, "--id").map(str::to_string),
        allowed_routes: list_of(flag(args, "--routes")),
        allowed_tasks: list_of(flag(args, "--tasks")),
        requests_per_minute: rpm.map(|r| r as u32),
        spend_usd_per_day: spend,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64);
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    let minted = match block_on(keys::create(&kv, &bytes, new, now_ms, ALL)) {
        Ok(m) => m,
        Err(KeyError::Invalid(m)) => {
            eprintln!("taskrouter: {m}");
            return USAGE;
        }
        Err(e) => {
            eprintln!("taskrouter: {}", message(e));
            return INVALID;
        }
    };
    let (id, key) = (&minted.record.id, &minted.key);
    if has(args, "--json") {
        out!("{}", json!({"id": id, "key": key}));
    } else {
        out!("created {id} ({name}). The key is shown only now:\n{key}");
    }
    OK
}

pub fn list(args: &[String]) -> i32 {
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match records(&kv) {
        Ok(list) => {
            if has(args, "--json") {
                let v: Vec<Value> = list
                    .iter()
                    .map(|(_, r)| serde_json::to_value(r).unwrap_or(Value::Null))
                    .collect();
                out!("{}", Value::Array(v));
            } else {
                for (_, r) in list {
                    let scope = r
                        .allowed_routes
                        .map(|v| format!(" routes={}", v.join(",")))
                        .unwrap_or_default();
                    let state = if r.revoked { "revoked" } else { "active" };
                    out!("{:<20} {:<8} {}{scope}", r.id, state, r.name);
                }
            }
            OK
        }
        Err(e) => {
            eprintln!("taskrouter: {e}");
            INVALID
        }
    }
}

pub fn revoke(id: &str) -> i32 {
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match block_on(keys::revoke(&kv, id, ALL)) {
        Ok(revoked) => {
            let n = revoked.len();
            let records = if n == 1 { "record" } else { "records" };
            out!("revoked {id} ({n} {records}); the Worker refuses it within its cache TTL plus up to 60 s");
            OK
        }
        Err(e) => {
            eprintln!("taskrouter: {}", message(e));
            INVALID
        }
    }
}
