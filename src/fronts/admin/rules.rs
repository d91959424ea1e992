//! The rules routes of the admin API: read, validate, push, list and roll back versions.
//!
//! KV layout (docs/operations.md): each version at `<base>:v:<n>`, the live one named by
//! `<base>:live`, and the change log at `<base>:history`, so a rollback is one pointer write.
//! A document is stored only once it validates (`parse_with_model`), and the live version only goes
//! up by a push; a rollback may point back to any stored version that still validates.
//!
//! - `GET /admin/rules`: the live document and its version.
//! - `GET /admin/rules/versions/{n}`: a stored version, and whether it is live.
//! - `POST /admin/rules/validate`: every error with its path, nothing stored.
//! - `PUT /admin/rules`: validate (every error with its path), refuse a version not above the
//!   live one, store it, log it, point to it.
//! - `POST /admin/rules/rollback` (`{"version": n}`, n a whole number >= 1; or an empty body or
//!   `{}` for the newest version below the live one; any other body is 400 `invalid_request`).
//! - `GET /admin/rules/history`.

use super::errors::{invalid_json, store_error};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Body, Incoming, Reply};
use crate::ports::{KvStore, ModelFiles};
use crate::rules::cache::{
    history_key, live_key, parse_with_model, read_live, version_key, RulesCache,
};
use crate::rules::RulesError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Change-log entries kept.
const MAX_HISTORY: usize = 200;

async fn history(kv: &impl KvStore, base: &str) -> Result<Vec<Value>, ApiError> {
    let text = kv.get_text(&history_key(base)).await.map_err(store_error)?;
    Ok(text
        .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
        .unwrap_or_default())
}

/// The live version: the pointer's, or the single document's own `version`.
async fn live_version(kv: &impl KvStore, base: &str) -> Result<Option<u64>, ApiError> {
    if let Some(p) = kv.get_text(&live_key(base)).await.map_err(store_error)? {
        return Ok(p.trim().parse().ok());
    }
    let text = kv.get_text(base).await.map_err(store_error)?;
    Ok(text
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|d| d["version"].as_u64()))
}

async fn record_change(kv: &impl KvStore, base: &str, entry: Value) -> Result<(), ApiError> {
    let mut log = history(kv, base).await?;
    log.push(entry);
    if log.len() > MAX_HISTORY {
        let extra = log.len() - MAX_HISTORY;
        log.drain(..extra);
    }
    kv.put_text(&history_key(base), &Value::Array(log).to_string())
        .await
        .map_err(store_error)
}

/// Why a push or rollback did not happen.
#[derive(Debug)]
pub enum Refused {
    /// The document does not validate: every error with its path.
    Invalid(Vec<RulesError>),
    Other(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Other(e)
    }
}

/// The live document (its text) and version, if any.
pub async fn live(
    kv: &impl KvStore,
    base: &str,
) -> Result<Option<(String, Option<u64>)>, ApiError> {
    let text = read_live(kv, base).await.map_err(store_error)?;
    match text {
        Some(t) => Ok(Some((t, live_version(kv, base).await?))),
        None => Ok(None),
    }
}

/// The change log, oldest first.
pub async fn change_log(kv: &impl KvStore, base: &str) -> Result<Vec<Value>, ApiError> {
    history(kv, base).await
}

/// Record `change` in the history, then point the live version at `version`.
async fn go_live(
    kv: &impl KvStore,
    base: &str,
    version: u64,
    change: Value,
) -> Result<(), ApiError> {
    record_change(kv, base, change).await?;
    kv.put_text(&live_key(base), &version.to_string())
        .await
        .map_err(store_error)
}

/// Validate and store a new version, log it, make it live. Its `version` must be above the live one.
pub async fn push(
    kv: &impl KvStore,
    files: &impl ModelFiles,
    base: &str,
    text: &str,
    now_ms: f64,
) -> Result<u64, Refused> {
    let rules = parse_with_model(text, files)
        .await
        .map_err(Refused::Invalid)?;
    if let Some(live) = live_version(kv, base).await? {
        if rules.version <= live {
            return Err(Refused::Other(ApiError::new(
                ErrorCode::VersionConflict,
                format!(
                    "version {} is not above the live version {live}; raise `version`",
                    rules.version
                ),
            )));
        }
    }
    let v = rules.version;
    kv.put_text(&version_key(base, v), text)
        .await
        .map_err(store_error)?;
    let sha: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    go_live(
        kv,
        base,
        v,
        json!({"version": v, "action": "push", "at_ms": now_ms, "sha256": sha}),
    )
    .await?;
    Ok(v)
}

/// Point back to `asked`, or to the newest pushed version below the live one. Returns (now live,
/// live before).
pub async fn rollback(
    kv: &impl KvStore,
    files: &impl ModelFiles,
    base: &str,
    asked: Option<u64>,
    now_ms: f64,
) -> Result<(u64, Option<u64>), Refused> {
    let live = live_version(kv, base).await?;
    let pushed: Vec<u64> = history(kv, base)
        .await?
        .iter()
        .filter(|e| e["action"] == "push")
        .filter_map(|e| e["version"].as_u64())
        .collect();
    let target = match asked {
        Some(v) => v,
        None => pushed
            .iter()
            .copied()
            .filter(|v| live.is_none_or(|l| *v < l))
            .max()
            .ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "no earlier version to roll back to")
            })?,
    };
    let text = kv
        .get_text(&version_key(base, target))
        .await
        .map_err(store_error)?;
    let Some(text) = text else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("version {target} is not stored"),
        )
        .into());
    };
    parse_with_model(&text, files)
        .await
        .map_err(Refused::Invalid)?;
    go_live(
        kv,
        base,
        target,
        json!({"version": target, "action": "rollback", "from": live, "at_ms": now_ms}),
    )
    .await?;
    Ok((target, live))
}

/// The error reply for a refused change: `rules_rejected` lists every error with its path.
fn refused_reply<B>(r: Refused) -> Reply<B> {
    match r {
        Refused::Other(e) => Reply::error(&e),
        Refused::Invalid(errors) => {
            let err = ApiError::new(ErrorCode::RulesRejected, crate::rules::summarize(&errors));
            let mut reply = Reply::error(&err);
            let mut body: Value = serde_json::from_slice(&err.body()).unwrap_or(Value::Null);
            body["error"]["errors"] = error_list(&errors);
            reply.body = crate::http::ReplyBody::Bytes(body.to_string().into_bytes());
            reply
        }
    }
}

/// Each error as `{"path", "message"}`: the list `rules_rejected` and validation answer with.
fn error_list(errors: &[RulesError]) -> Value {
    Value::Array(
        errors
            .iter()
            .map(|e| json!({"path": e.path, "message": e.message}))
            .collect(),
    )
}

/// `GET /admin/rules`.
pub(super) async fn get_live<B>(kv: &impl KvStore, base: &str) -> Result<Reply<B>, ApiError> {
    let Some((text, version)) = live(kv, base).await? else {
        return Err(ApiError::new(
            ErrorCode::RulesMissing,
            "no rules are stored yet",
        ));
    };
    let rules: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply::json(
        200,
        &json!({"live_version": version, "rules": rules}),
    ))
}

/// `GET /admin/rules/versions/{n}`: the stored document as JSON, and whether it is live.
pub(super) async fn get_version<B>(
    kv: &impl KvStore,
    base: &str,
    n: &str,
) -> Result<Reply<B>, ApiError> {
    let Ok(version) = n.parse::<u64>() else {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("a rules version is a whole number, not {n:?}"),
        ));
    };
    let Some(text) = kv
        .get_text(&version_key(base, version))
        .await
        .map_err(store_error)?
    else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("version {version} is not stored"),
        ));
    };
    let live = live_version(kv, base).await? == Some(version);
    let rules: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply::json(
        200,
        &json!({"version": version, "live": live, "rules": rules}),
    ))
}

/// `POST /admin/rules/validate`: `{"valid": true, "version": n}`, or `{"valid": false, "errors":
/// [{"path", "message"}]}` (a body that is not JSON is one error at the path `""`). Nothing is
/// stored.
pub(super) async fn validate<B>(
    req: &Incoming,
    files: &impl ModelFiles,
) -> Result<Reply<B>, ApiError> {
    let text = document(req)?;
    let answer = match parse_with_model(&text, files).await {
        Ok(rules) => json!({"valid": true, "version": rules.version}),
        Err(errors) => json!({"valid": false, "errors": error_list(&errors)}),
    };
    Ok(Reply::json(200, &answer))
}

/// The rules document in a request's body.
fn document(req: &Incoming) -> Result<String, ApiError> {
    match &req.body {
        Body::Bytes(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Body::TooLarge { .. } => Err(ApiError::new(
            ErrorCode::RequestTooLarge,
            "the rules document is too large",
        )),
    }
}

/// `PUT /admin/rules`.
pub(super) async fn put<B>(
    req: &Incoming,
    kv: &impl KvStore,
    files: &impl ModelFiles,
    cache: &RulesCache,
    base: &str,
    now_ms: f64,
) -> Result<Reply<B>, ApiError> {
    let text = document(req)?;
    match push(kv, files, base, &text, now_ms).await {
        Ok(v) => {
            cache.invalidate();
            Ok(Reply::json(200, &json!({"live_version": v})))
        }
        Err(r) => Ok(refused_reply(r)),
    }
}

/// The version a rollback body asks for: `None` for an empty body or `{}` (the newest version
/// below the live one). Anything else must be `{"version": n}` with `n` a whole number of 1 or
/// more: a string, a fraction, a negative number, another shape or another field is refused
/// rather than read as "the previous version".
fn asked_version(body: &Body) -> Result<Option<u64>, ApiError> {
    let bytes = match body {
        Body::Bytes(b) => b,
        Body::TooLarge { .. } => {
            return Err(ApiError::new(
                ErrorCode::RequestTooLarge,
                "the rollback body is too large; send {\"version\": n} or nothing",
            ))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidRequest, m);
    let Value::Object(fields) = serde_json::from_slice::<Value>(bytes).map_err(invalid_json)?
    else {
        return Err(invalid(
            "the rollback body must be a JSON object: {\"version\": n}, or {} or nothing for the previous version".into(),
        ));
    };
    if let Some(other) = fields.keys().find(|k| k.as_str() != "version") {
        return Err(invalid(format!(
            "unknown field `{other}`; a rollback takes only `version`"
        )));
    }
    match fields.get("version") {
        None => Ok(None),
        Some(v) => match v.as_u64().filter(|n| *n >= 1) {
            Some(n) => Ok(Some(n)),
            None => Err(invalid(format!(
                "`version` must be a whole number of 1 or more, not {v}"
            ))),
        },
    }
}

/// `POST /admin/rules/rollback`.
pub(super) async fn post_rollback<B>(
    req: &Incoming,
    kv: &impl KvStore,
    files: &impl ModelFiles,
    cache: &RulesCache,
    base: &str,
    now_ms: f64,
) -> Result<Reply<B>, ApiError> {
    let asked = asked_version(&req.body)?;
    match rollback(kv, files, base, asked, now_ms).await {
        Ok((target, previous)) => {
            cache.invalidate();
            Ok(Reply::json(
                200,
                &json!({"live_version": target, "previous": previous}),
            ))
        }
        Err(r) => Ok(refused_reply(r)),
    }
}

/// `GET /admin/rules/history`.
pub(super) async fn get_history<B>(kv: &impl KvStore, base: &str) -> Result<Reply<B>, ApiError> {
    Ok(Reply::json(
        200,
        &json!({"live_version": live_version(kv, base).await?, "history": history(kv, base).await?}),
    ))
}
