//! Gateway keys: reading the caller's key from the request, and finding its record in KV, where
//! keys are stored only as a SHA-256 hash (`gateway-key:<hex>`). Records are cached in the isolate
//! for the same TTL as the rules, and KV reads go through its 60 s edge cache (`shell::kv`), so a
//! revocation takes effect within that TTL plus up to 60 s.

use crate::error::{ApiError, ErrorCode};
use crate::http::Incoming;
use crate::ports::KvStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;

pub const KEY_PREFIX: &str = "gateway-key:";
/// How many key records one isolate keeps; past this the cache starts over.
const MAX_CACHED_KEYS: usize = 1024;

/// What KV holds for a key (never the key itself).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct KeyRecord {
    /// Short, stable, not secret: used as the analytics index.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub revoked: bool,
    /// Routes (rule names, `default`, `explicit`) this key may use; all when absent.
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    /// Tasks this key may use; all when absent.
    #[serde(default)]
    pub allowed_tasks: Option<Vec<String>>,
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    #[serde(default)]
    pub spend_usd_per_day: Option<f64>,
    #[serde(default)]
    pub created_at_ms: Option<f64>,
}

impl KeyRecord {
    /// May this key use this route and task?
    pub fn permits(&self, rule: &str, task: Option<&str>) -> Result<(), ApiError> {
        if let Some(routes) = &self.allowed_routes {
            if !routes.iter().any(|r| r == rule) {
                return Err(ApiError::new(
                    ErrorCode::KeyNotAllowed,
                    format!("this key may not use the route \"{rule}\""),
                ));
            }
        }
        if let Some(tasks) = &self.allowed_tasks {
            if !task.is_some_and(|t| tasks.iter().any(|a| a == t)) {
                let t = task.unwrap_or("(none)");
                return Err(ApiError::new(
                    ErrorCode::KeyNotAllowed,
                    format!("this key may not be used for the task {t}"),
                ));
            }
        }
        Ok(())
    }
}

/// The bearer token of `Authorization`, if any.
fn bearer(req: &Incoming) -> Option<&str> {
    req.header("authorization").and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    })
}

/// The gateway key: `x-router-key`, else `Authorization: Bearer <key>`, else `x-api-key`.
pub fn presented_key(req: &Incoming) -> Option<&str> {
    req.header("x-router-key")
        .map(str::trim)
        .or_else(|| bearer(req))
        .or_else(|| req.header("x-api-key").map(str::trim))
        .filter(|k| !k.is_empty())
}

/// The caller's own provider key: its `Authorization` bearer token when the gateway key came in
/// `x-router-key`. Used only for providers that allow bring-your-own-key.
pub fn own_provider_key(req: &Incoming) -> Option<crate::ports::Secret> {
    req.header("x-router-key")?;
    bearer(req)
        .filter(|k| !k.is_empty())
        .map(crate::ports::Secret::new)
}

/// Lower-case hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Default)]
pub struct KeyCache {
    entries: RefCell<HashMap<String, (KeyRecord, f64)>>,
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Authenticate the caller; the record of a valid, unrevoked key.
    pub async fn authenticate(
        &self,
        req: &Incoming,
        kv: &impl KvStore,
        now_ms: f64,
        ttl_ms: f64,
    ) -> Result<KeyRecord, ApiError> {
        let Some(key) = presented_key(req) else {
            return Err(ApiError::new(
                ErrorCode::MissingApiKey,
                "no gateway key: send it as `Authorization: Bearer <key>`",
            ));
        };
        let hash = hash_key(key);
        let cached = self.entries.borrow().get(&hash).cloned();
        let record = match cached {
            Some((record, at)) if now_ms >= at && now_ms - at < ttl_ms => Some(record),
            _ => {
                let text = kv
                    .get_text(&format!("{KEY_PREFIX}{hash}"))
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            ErrorCode::KeyStoreUnavailable,
                            format!("reading gateway keys failed: {}", e.0),
                        )
                    })?;
                let record = text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok());
                let mut entries = self.entries.borrow_mut();
                if entries.len() >= MAX_CACHED_KEYS {
                    entries.clear();
                }
                match &record {
                    Some(r) => entries.insert(hash, (r.clone(), now_ms)),
                    None => entries.remove(&hash),
                };
                record
            }
        };
        match record {
            Some(r) if !r.revoked => Ok(r),
            _ => Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the gateway key is not valid",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Body, Method};
    use crate::ports::StoreError;
    use futures::executor::block_on;
    use std::cell::Cell;

    struct Kv {
        map: RefCell<HashMap<String, String>>,
        reads: Cell<u32>,
    }

    impl KvStore for Kv {
        async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.map.borrow().get(key).cloned())
        }
    }

    fn req(headers: &[(&str, &str)]) -> Incoming {
        Incoming {
            method: Method::Post,
            path: "/v1/chat/completions".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Body::Bytes(Vec::new()),
            request_id: "r".into(),
            colo: None,
            country: None,
            query: String::new(),
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bring_your_own_key_needs_the_gateway_key_elsewhere() {
        let byok = req(&[("x-router-key", "gw"), ("authorization", "Bearer sk-own")]);
        assert_eq!(presented_key(&byok), Some("gw"));
        assert_eq!(own_provider_key(&byok).unwrap().expose(), "sk-own");
        assert!(
            own_provider_key(&req(&[("authorization", "Bearer gw")])).is_none(),
            "the gateway key is never a provider key"
        );
    }

    #[test]
    fn presented_key_forms() {
        assert_eq!(
            presented_key(&req(&[("authorization", "Bearer k1")])),
            Some("k1")
        );
        assert_eq!(
            presented_key(&req(&[("authorization", "bearer  k1 ")])),
            Some("k1")
        );
        assert_eq!(presented_key(&req(&[("x-api-key", "k2")])), Some("k2"));
        assert_eq!(presented_key(&req(&[("authorization", "Basic abc")])), None);
        assert_eq!(presented_key(&req(&[("authorization", "Bearer ")])), None);
        assert_eq!(presented_key(&req(&[])), None);
    }

    #[test]
    fn valid_missing_wrong_and_revoked_keys() {
        let kv = Kv {
            map: RefCell::new(HashMap::new()),
            reads: Cell::new(0),
        };
        kv.map.borrow_mut().insert(
            format!("{KEY_PREFIX}{}", hash_key("good")),
            r#"{"id": "team-a", "name": "A"}"#.into(),
        );
        let cache = KeyCache::new();
        let auth = |h: &[(&str, &str)], now| block_on(cache.authenticate(&req(h), &kv, now, 100.0));
        assert_eq!(
            auth(&[("authorization", "Bearer good")], 0.0).unwrap().id,
            "team-a"
        );
        assert_eq!(
            auth(&[("authorization", "Bearer good")], 50.0).unwrap().id,
            "team-a"
        );
        assert_eq!(kv.reads.get(), 1, "cached within the TTL");
        assert_eq!(auth(&[], 0.0).unwrap_err().code, ErrorCode::MissingApiKey);
        assert_eq!(
            auth(&[("authorization", "Bearer bad")], 0.0)
                .unwrap_err()
                .code,
            ErrorCode::InvalidApiKey
        );
        kv.map.borrow_mut().insert(
            format!("{KEY_PREFIX}{}", hash_key("good")),
            r#"{"id": "team-a", "revoked": true}"#.into(),
        );
        assert!(
            auth(&[("authorization", "Bearer good")], 99.0).is_ok(),
            "revocation waits for the TTL"
        );
        assert_eq!(
            auth(&[("authorization", "Bearer good")], 100.0)
                .unwrap_err()
                .code,
            ErrorCode::InvalidApiKey
        );
    }
}
