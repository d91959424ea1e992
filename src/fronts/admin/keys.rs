//! The gateway-key routes of the admin API, over the same KV records as `taskrouter keys`
//! (`access::keys` makes, lists and revokes them for both). A key is shown once, in the answer
//! that made it; listings carry records only (never a key or its hash).
//!
//! - `GET /admin/keys`: `{"keys": [record, ...], "unread": n, "truncated": bool}`, oldest first:
//!   records from the listing's metadata; those without it (written by older versions or by hand)
//!   read one by one, at most `WORKER_MAX_READS` (`unread` counts the rest), and at most
//!   `MAX_LIST_PAGES` pages (`truncated` when there were more).
//! - `POST /admin/keys` (`{"name", "id"?, "allowed_routes"?, "allowed_tasks"?,
//!   "requests_per_minute"?, "spend_usd_per_day"?}`): 201 `{"key": "tr_...", "record": {...}}`;
//!   400 naming the field for bad input, 409 `key_exists` for an id that is taken.
//! - `DELETE /admin/keys/{id}`: `{"revoked": id}`, every record with the id marked revoked (they
//!   stay); 404 when there is no record with the id, 503 when not every record could be read.

use super::errors::invalid_json;
use crate::access::keys::{self, KeyError, NewKey, KEY_BYTES, WORKER_MAX_READS};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Body, Incoming, Reply};
use crate::ports::{KvStore, Random};
use serde_json::{json, Map, Value};

/// The fields a new key may have.
const FIELDS: [&str; 6] = [
    "name",
    "id",
    "allowed_routes",
    "allowed_tasks",
    "requests_per_minute",
    "spend_usd_per_day",
];

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Invalid(m) => ApiError::new(ErrorCode::InvalidRequest, m),
        KeyError::Exists(m) => ApiError::new(ErrorCode::KeyExists, m),
        KeyError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m),
        KeyError::Incomplete(m) => ApiError::new(ErrorCode::KeyStoreUnavailable, m),
        KeyError::Store(e) => ApiError::new(
            ErrorCode::KeyStoreUnavailable,
            format!("gateway keys: KV: {}", e.0),
        ),
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// `GET /admin/keys`.
pub(super) async fn get_list<B>(kv: &impl KvStore) -> Result<Reply<B>, ApiError> {
    let listing = keys::list(kv, WORKER_MAX_READS).await.map_err(key_error)?;
    let records: Vec<Value> = (listing.records.iter())
        .filter_map(|(_, r)| serde_json::to_value(r).ok())
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "keys": records, "unread": listing.unread, "truncated": listing.truncated }),
    ))
}

/// An optional list of names.
fn names(body: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or_else(|| invalid(format!("`{field}` must be a list of strings"))),
        Some(_) => Err(invalid(format!("`{field}` must be a list of strings"))),
    }
}

/// The new key a request's body describes.
fn new_key(req: &Incoming) -> Result<NewKey, ApiError> {
    let Body::Bytes(bytes) = &req.body else {
        return Err(ApiError::new(
            ErrorCode::RequestTooLarge,
            "the body is too large",
        ));
    };
    let Value::Object(body) = serde_json::from_slice::<Value>(bytes).map_err(invalid_json)? else {
        return Err(invalid("the body must be a JSON object".into()));
    };
    if let Some(other) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field `{other}`; a key takes {}",
            FIELDS.join(", ")
        )));
    }
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(invalid("`name` is required and must be a string".into())),
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("`id` must be a string".into())),
    };
    let requests_per_minute = match body.get("requests_per_minute") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                return Err(invalid(
                    "`requests_per_minute` must be a whole number from 0 to 4294967295".into(),
                ))
            }
        },
    };
    let spend_usd_per_day = match body.get("spend_usd_per_day") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(x) => Some(x),
            None => {
                return Err(invalid(
                    "`spend_usd_per_day` must be a number of dollars".into(),
                ))
            }
        },
    };
    Ok(NewKey {
        name,
        id,
        allowed_routes: names(&body, "allowed_routes")?,
        allowed_tasks: names(&body, "allowed_tasks")?,
        requests_per_minute,
        spend_usd_per_day,
    })
}

/// `POST /admin/keys`: the key (shown only here) and its record.
pub(super) async fn post<B>(
    req: &Incoming,
    kv: &impl KvStore,
    rng: &impl Random,
    now_ms: f64,
) -> Result<Reply<B>, ApiError> {
    let new = new_key(req)?;
    let mut bytes = [0u8; KEY_BYTES];
    rng.fill_secret(&mut bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("no random source for a key: {e}"),
        )
    })?;
    let minted = keys::create(kv, &bytes, new, now_ms, WORKER_MAX_READS)
        .await
        .map_err(key_error)?;
    Ok(Reply::json(
        201,
        &json!({"key": minted.key, "record": minted.record}),
    ))
}

/// `DELETE /admin/keys/{id}` (the id percent-decoded).
pub(super) async fn delete<B>(kv: &impl KvStore, id: &str) -> Result<Reply<B>, ApiError> {
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    keys::revoke(kv, &id, WORKER_MAX_READS)
        .await
        .map_err(key_error)?;
    Ok(Reply::json(200, &json!({ "revoked": id })))
}
