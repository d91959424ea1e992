//! `keys create|list|revoke`: gateway keys. A key is random (the OS's source), shown once, and
//! stored in KV only as its SHA-256 under `gateway-key:<hex>`, with a name, the routes and tasks
//! it may use, and its request and spend limits. Revocation takes effect within the Worker's
//! cache TTL.

use crate::kv_api::KvApi;
use crate::rules_cmds::{flag, has, INVALID, OK, USAGE};
use futures::executor::block_on;
use serde_json::{json, Value};
use taskrouter::access::auth::{hash_key, KeyRecord, KEY_PREFIX};
use taskrouter::ports::KvStore;

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

fn records(kv: &KvApi) -> Result<Vec<(String, KeyRecord)>, String> {
    let mut out = Vec::new();
    for name in kv.list_keys(KEY_PREFIX)? {
        let text = block_on(kv.get_text(&name)).map_err(|e| e.0)?;
        if let Some(r) = text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok()) {
            out.push((name, r));
        }
    }
    Ok(out)
}

/// `keys create --name NAME [--id ID] [--routes a,b] [--tasks x,y] [--rpm N] [--spend-per-day USD] [--json]`
pub fn create(args: &[String]) -> i32 {
    let Some(name) = flag(args, "--name") else {
        eprintln!("taskrouter: keys create needs --name");
        return USAGE;
    };
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        eprintln!("taskrouter: no random source");
        return USAGE;
    }
    let key = format!(
        "tr_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let id =
        flag(args, "--id").map_or_else(|| format!("key-{}", &hash_key(&key)[..8]), str::to_string);
    let parse_num = |f: &str| flag(args, f).map(str::parse::<f64>);
    let (rpm, spend) = match (parse_num("--rpm"), parse_num("--spend-per-day")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            eprintln!("taskrouter: --rpm and --spend-per-day take numbers");
            return USAGE;
        }
        (r, s) => (r.and_then(Result::ok), s.and_then(Result::ok)),
    };
    let record = KeyRecord {
        id: id.clone(),
        name: name.to_string(),
        revoked: false,
        allowed_routes: list_of(flag(args, "--routes")),
        allowed_tasks: list_of(flag(args, "--tasks")),
        requests_per_minute: rpm.map(|r| r as u32),
        spend_usd_per_day: spend,
        created_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as f64),
    };
    let kv = match api() {
        Ok(k) => k,
        Err(code) => return code,
    };
    match records(&kv) {
        Ok(existing) if existing.iter().any(|(_, r)| r.id == id) => {
            eprintln!("taskrouter: a key with id {id} exists already");
            return INVALID;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("taskrouter: {e}");
            return INVALID;
        }
    }
    let stored = serde_json::to_string(&record).unwrap_or_default();
    if let Err(e) = block_on(kv.put_text(&format!("{KEY_PREFIX}{}", hash_key(&key)), &stored)) {
        eprintln!("taskrouter: {}", e.0);
        return INVALID;
    }
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
    let list = match records(&kv) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("taskrouter: {e}");
            return INVALID;
        }
    };
    let Some((name, mut record)) = list.into_iter().find(|(_, r)| r.id == id) else {
        eprintln!("taskrouter: no key with id {id}");
        return INVALID;
    };
    record.revoked = true;
    match block_on(kv.put_text(&name, &serde_json::to_string(&record).unwrap_or_default())) {
        Ok(()) => {
            out!("revoked {id}; the Worker refuses it within its cache TTL");
            OK
        }
        Err(e) => {
            eprintln!("taskrouter: {}", e.0);
            INVALID
        }
    }
}
