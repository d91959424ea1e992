//! The admin API: operators manage rules versions (`rules`), gateway keys (`keys`) and read the
//! traffic the analytics hold (`traffic`) over HTTP, without a redeploy; `POST /admin/explain` is
//! the gateway's own explain behind the admin key (served by `gateway`, authorised here).
//! Authenticated only by the `ADMIN_KEY` Worker secret (compared in constant time); a gateway key
//! never opens it, and without the secret the API is off. Every route is checked here before any
//! of its work: `handle` authorises first, then dispatches on path and method.
//!
//! Routes (docs/operations.md#the-admin-api): `GET|PUT /admin/rules`,
//! `GET /admin/rules/versions/{n}`, `POST /admin/rules/validate`, `POST /admin/rules/rollback`,
//! `GET /admin/rules/history`, `POST /admin/explain`, `GET|POST /admin/keys`,
//! `DELETE /admin/keys/{id}`, `GET /admin/traffic?since=24h`.

mod errors;
mod keys;
mod rules;
mod traffic;

pub use rules::{change_log, live, push, rollback, Refused};

use crate::access::auth::presented_key;
use crate::error::{ApiError, ErrorCode};
use crate::http::{Incoming, Method, Reply};
use crate::ports::{PortSet, Secrets};
use crate::rules::cache::RulesCache;
use crate::settings::Settings;

pub const ADMIN_KEY_SECRET: &str = "ADMIN_KEY";
pub const PREFIX: &str = "/admin/";
/// The gateway's explain, for the admin key (the console's playground).
pub const EXPLAIN_PATH: &str = "/admin/explain";
const VERSIONS_PREFIX: &str = "/admin/rules/versions/";
const KEYS_PREFIX: &str = "/admin/keys/";

/// Equal without leaking where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Is this request the admin's? 403 `admin_disabled` without the secret, 401 without the key or
/// with another.
pub fn authorize(req: &Incoming, secrets: &impl Secrets) -> Result<(), ApiError> {
    let Some(admin) = secrets.get(ADMIN_KEY_SECRET) else {
        return Err(ApiError::new(
            ErrorCode::AdminDisabled,
            format!("the admin API is off: set the Worker secret {ADMIN_KEY_SECRET} to turn it on"),
        ));
    };
    let Some(key) = presented_key(req) else {
        return Err(ApiError::new(
            ErrorCode::MissingApiKey,
            "no admin key: send it as `Authorization: Bearer <key>`",
        ));
    };
    if constant_time_eq(key.as_bytes(), admin.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidApiKey,
            "the admin key is not valid",
        ))
    }
}

/// Answer an `/admin/...` request (but `EXPLAIN_PATH`, which the gateway serves after
/// `authorize`).
pub async fn handle<P: PortSet, B>(
    req: &Incoming,
    ports: &P,
    cache: &RulesCache,
    settings: &Settings,
    now_ms: f64,
) -> Result<Reply<B>, ApiError> {
    authorize(req, ports.secrets())?;
    let (kv, files, base) = (ports.kv(), ports.model_files(), settings.rules_key.as_str());
    let path = req.path.as_str();
    match (path, &req.method) {
        ("/admin/rules", Method::Get) => rules::get_live(kv, base).await,
        ("/admin/rules", Method::Put) => rules::put(req, kv, files, cache, base, now_ms).await,
        ("/admin/rules/validate", Method::Post) => rules::validate(req, files).await,
        ("/admin/rules/rollback", Method::Post) => {
            rules::post_rollback(req, kv, files, cache, base, now_ms).await
        }
        ("/admin/rules/history", Method::Get) => rules::get_history(kv, base).await,
        ("/admin/keys", Method::Get) => keys::get_list(kv).await,
        ("/admin/keys", Method::Post) => keys::post(req, kv, ports.rng(), now_ms).await,
        ("/admin/traffic", Method::Get) => traffic::get(req, ports, settings).await,
        (_, Method::Get) if path.starts_with(VERSIONS_PREFIX) => {
            let n = &path[VERSIONS_PREFIX.len()..];
            rules::get_version(kv, base, n).await
        }
        (_, Method::Delete) if path.starts_with(KEYS_PREFIX) => {
            keys::delete(kv, &path[KEYS_PREFIX.len()..]).await
        }
        _ if is_known(path) => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{path} does not accept this method"),
        )),
        _ => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no admin route for {path}"),
        )),
    }
}

/// A path some admin route serves, whatever the method.
fn is_known(path: &str) -> bool {
    const PATHS: [&str; 7] = [
        "/admin/rules",
        "/admin/rules/validate",
        "/admin/rules/rollback",
        "/admin/rules/history",
        "/admin/keys",
        "/admin/traffic",
        EXPLAIN_PATH,
    ];
    PATHS.contains(&path) || path.starts_with(VERSIONS_PREFIX) || path.starts_with(KEYS_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(constant_time_eq(b"secret-admin-key", b"secret-admin-key"));
        assert!(!constant_time_eq(b"secret-admin-key", b"secret-admin-kez"));
        assert!(!constant_time_eq(b"secret", b"secret-admin-key"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
