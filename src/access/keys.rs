//! Making, listing and revoking gateway keys: the one copy the admin API (`fronts::admin::keys`)
//! and the CLI (`taskrouter keys`) share. A key is `tr_` and 48 hex digits from 24 random bytes
//! the caller supplies (the Worker's `crypto.getRandomValues`, the OS's source in the CLI); it is
//! shown once and stored only as its SHA-256, under `gateway-key:<hex>` (`auth::KEY_PREFIX`),
//! with its record (`auth::KeyRecord`). Ids are unique among the stored records.

use crate::access::auth::{hash_key, KeyRecord, KEY_PREFIX};
use crate::ports::{KvStore, StoreError};

/// Random bytes in a key.
pub const KEY_BYTES: usize = 24;
/// Longest name and id accepted.
const MAX_NAME_CHARS: usize = 200;
const MAX_ID_CHARS: usize = 64;

/// What a new key is to be: its name, and optionally its id, scope and limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewKey {
    pub name: String,
    /// `key-<first 8 hex of its hash>` when absent.
    pub id: Option<String>,
    pub allowed_routes: Option<Vec<String>>,
    pub allowed_tasks: Option<Vec<String>>,
    pub requests_per_minute: Option<u32>,
    pub spend_usd_per_day: Option<f64>,
}

/// A key just made: the key itself (shown once), where it is stored, and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Minted {
    pub key: String,
    pub storage_key: String,
    pub record: KeyRecord,
}

/// Why a key was not made, listed or revoked.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyError {
    /// The input is not usable; the message names the field.
    Invalid(String),
    /// A key with this id exists already.
    Exists(String),
    /// No key with this id.
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        KeyError::Store(e)
    }
}

/// `tr_` and the bytes in lower-case hex.
pub fn key_text(bytes: &[u8; KEY_BYTES]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("tr_{hex}")
}

/// Where a key's record is stored: under its hash, never the key.
pub fn storage_key(key: &str) -> String {
    format!("{KEY_PREFIX}{}", hash_key(key))
}

/// Check a new key's fields; each message names the field.
fn check(new: &NewKey) -> Result<(), KeyError> {
    let invalid = |m: String| Err(KeyError::Invalid(m));
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return invalid(format!("`name` must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if let Some(id) = &new.id {
        let ok = (1..=MAX_ID_CHARS).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return invalid(format!(
                "`id` must be 1 to {MAX_ID_CHARS} letters, digits, `-`, `_` or `.` (it is the analytics index), not {id:?}"
            ));
        }
    }
    for (field, list) in [
        ("allowed_routes", &new.allowed_routes),
        ("allowed_tasks", &new.allowed_tasks),
    ] {
        if list.iter().flatten().any(|s| s.trim().is_empty()) {
            return invalid(format!("`{field}` must list non-empty names"));
        }
    }
    if let Some(spend) = new.spend_usd_per_day {
        if !spend.is_finite() || spend < 0.0 {
            return invalid("`spend_usd_per_day` must be a number of dollars, 0 or more".into());
        }
    }
    Ok(())
}

/// The key and record `new` describes, from `bytes` (random, from the caller's source), made at
/// `now_ms`. Nothing is stored.
pub fn mint(bytes: &[u8; KEY_BYTES], new: NewKey, now_ms: f64) -> Result<Minted, KeyError> {
    check(&new)?;
    let key = key_text(bytes);
    let storage_key = storage_key(&key);
    let id = new
        .id
        .unwrap_or_else(|| format!("key-{}", &hash_key(&key)[..8]));
    let record = KeyRecord {
        id,
        name: new.name.trim().to_string(),
        revoked: false,
        allowed_routes: new.allowed_routes,
        allowed_tasks: new.allowed_tasks,
        requests_per_minute: new.requests_per_minute,
        spend_usd_per_day: new.spend_usd_per_day,
        created_at_ms: Some(now_ms),
    };
    Ok(Minted {
        key,
        storage_key,
        record,
    })
}

/// Every stored key record with where it is stored, oldest first (by `created_at_ms`, records
/// without it first, then by id). Values that are not records are left out.
pub async fn list(kv: &impl KvStore) -> Result<Vec<(String, KeyRecord)>, KeyError> {
    let mut out = Vec::new();
    for name in kv.list_keys(KEY_PREFIX).await? {
        let text = kv.get_text(&name).await?;
        if let Some(r) = text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok()) {
            out.push((name, r));
        }
    }
    out.sort_by(|(_, a), (_, b)| {
        let at = |r: &KeyRecord| r.created_at_ms.unwrap_or(f64::NEG_INFINITY);
        at(a).total_cmp(&at(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Make a key and store its record, refusing an id that is taken.
pub async fn create(
    kv: &impl KvStore,
    bytes: &[u8; KEY_BYTES],
    new: NewKey,
    now_ms: f64,
) -> Result<Minted, KeyError> {
    let minted = mint(bytes, new, now_ms)?;
    let id = &minted.record.id;
    if list(kv).await?.iter().any(|(_, r)| &r.id == id) {
        return Err(KeyError::Exists(format!(
            "a key with id {id} exists already"
        )));
    }
    // Never write over another key's record (only a broken random source could collide).
    if kv.get_text(&minted.storage_key).await?.is_some() {
        return Err(KeyError::Exists(
            "the new key collides with a stored one; make it again".into(),
        ));
    }
    let stored = serde_json::to_string(&minted.record)
        .map_err(|e| KeyError::Store(StoreError(e.to_string())))?;
    kv.put_text(&minted.storage_key, &stored).await?;
    Ok(minted)
}

/// Mark the key with this id revoked (its record stays, so its id stays taken); its record.
pub async fn revoke(kv: &impl KvStore, id: &str) -> Result<KeyRecord, KeyError> {
    let Some((name, mut record)) = list(kv).await?.into_iter().find(|(_, r)| r.id == id) else {
        return Err(KeyError::NotFound(format!("no key with id {id}")));
    };
    record.revoked = true;
    let stored =
        serde_json::to_string(&record).map_err(|e| KeyError::Store(StoreError(e.to_string())))?;
    kv.put_text(&name, &stored).await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MemoryKv;
    use futures::executor::block_on;

    fn named(name: &str) -> NewKey {
        NewKey {
            name: name.into(),
            ..NewKey::default()
        }
    }

    #[test]
    fn a_key_is_tr_and_48_hex_stored_under_its_hash() {
        let m = mint(&[0xab; KEY_BYTES], named("Team A"), 5.0).unwrap();
        assert_eq!(m.key, format!("tr_{}", "ab".repeat(24)));
        assert_eq!(m.storage_key, format!("gateway-key:{}", hash_key(&m.key)));
        assert_eq!(m.record.id, format!("key-{}", &hash_key(&m.key)[..8]));
        assert_eq!(m.record.created_at_ms, Some(5.0));
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = [
            (named(" "), "`name`"),
            (
                NewKey {
                    id: Some("a b".into()),
                    ..named("x")
                },
                "`id`",
            ),
            (
                NewKey {
                    allowed_tasks: Some(vec!["".into()]),
                    ..named("x")
                },
                "`allowed_tasks`",
            ),
            (
                NewKey {
                    spend_usd_per_day: Some(-1.0),
                    ..named("x")
                },
                "`spend_usd_per_day`",
            ),
        ];
        for (new, field) in bad {
            match mint(&[0; KEY_BYTES], new, 0.0) {
                Err(KeyError::Invalid(m)) => assert!(m.contains(field), "{m}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn create_list_revoke() {
        let kv = MemoryKv::default();
        let new = |id: &str| NewKey {
            id: Some(id.into()),
            ..named("n")
        };
        block_on(create(&kv, &[1; KEY_BYTES], new("b"), 10.0)).unwrap();
        block_on(create(&kv, &[2; KEY_BYTES], new("a"), 10.0)).unwrap();
        block_on(create(&kv, &[3; KEY_BYTES], new("c"), 5.0)).unwrap();
        let ids: Vec<String> = block_on(list(&kv))
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.id)
            .collect();
        assert_eq!(ids, ["c", "a", "b"], "by creation time, then id");
        assert!(matches!(
            block_on(create(&kv, &[4; KEY_BYTES], new("a"), 11.0)),
            Err(KeyError::Exists(_))
        ));
        assert!(block_on(revoke(&kv, "a")).unwrap().revoked);
        let stored = storage_key(&key_text(&[2; KEY_BYTES]));
        let stored = block_on(kv.get_text(&stored)).unwrap().unwrap();
        assert!(stored.contains("\"revoked\":true"));
        assert!(matches!(
            block_on(revoke(&kv, "zz")),
            Err(KeyError::NotFound(_))
        ));
    }
}
