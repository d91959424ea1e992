//! Making, listing and revoking gateway keys: the one copy the admin API (`fronts::admin::keys`)
//! and the CLI (`taskrouter keys`) share. A key is `tr_` and 48 hex digits from 24 random bytes
//! the caller supplies (the Worker's `crypto.getRandomValues`, the OS's source in the CLI); it is
//! shown once and stored only as its SHA-256, under `gateway-key:<hex>` (`auth::KEY_PREFIX`),
//! with its record (`auth::KeyRecord`), which is also the key's KV metadata when it fits, so a
//! listing needs no read per record.
//!
//! Ids are found through an index, never by reading every record: `gateway-key-id:<id>` holds the
//! storage key of the record made with that id (a point read, so a key made a moment ago is found
//! although KV's listing lags behind writes by up to a minute), and `gateway-key-id:<id>:<hash>`
//! marks each record made with it (a listing of that id alone). KV cannot reserve an id
//! atomically: two creates with the same id at the same moment may both succeed. Revocation
//! therefore revokes every record with the id. Records made before the index (or written by
//! hand) are indexed by the first create or revoke that lists them all; `gateway-key-index:complete`
//! says that happened, and until it is set create and revoke also list every record (bounded).
//! Nothing here caps its own work: callers in the Worker pass a cap on reads one by one.

use crate::access::auth::{hash_key, KeyRecord, KEY_PREFIX};
use crate::ports::{KvStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Random bytes in a key.
pub const KEY_BYTES: usize = 24;
/// Longest name and id accepted.
const MAX_NAME_CHARS: usize = 200;
const MAX_ID_CHARS: usize = 64;

/// The id index: `gateway-key-id:<id>` names the record made with the id, and
/// `gateway-key-id:<id>:<hash>` each record made with it. (Ids have no `:`.)
pub const ID_INDEX_PREFIX: &str = "gateway-key-id:";
/// Set once every stored record is in the id index.
pub const INDEX_COMPLETE_KEY: &str = "gateway-key-index:complete";
/// Pages (of up to 1000 keys) one listing reads at most: 10,000 records.
pub const MAX_LIST_PAGES: usize = 10;
/// Records without metadata (written before it, or by hand) that one call in the Worker reads
/// one by one at most, keeping it far below the platform's 1,000 KV operations per invocation.
pub const WORKER_MAX_READS: usize = 200;
/// Workers KV keeps at most this much metadata per key (serialised).
const MAX_METADATA_BYTES: usize = 1024;

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
    /// Not every record could be read within the call's cap, and the id was not among those
    /// read: whether it exists is not known.
    Incomplete(String),
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

/// What a record's KV metadata says: its id (the record was written by code that indexes it),
/// and the record itself when it fits in KV's metadata.
#[derive(Debug, Deserialize, Serialize)]
struct Listed {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<KeyRecord>,
}

fn to_store(e: serde_json::Error) -> KeyError {
    KeyError::Store(StoreError(e.to_string()))
}

/// The metadata stored with a record: the record when it fits, else its id alone.
fn metadata(record: &KeyRecord) -> Result<Value, KeyError> {
    let full = serde_json::to_value(Listed {
        id: record.id.clone(),
        record: Some(record.clone()),
    })
    .map_err(to_store)?;
    if full.to_string().len() <= MAX_METADATA_BYTES {
        return Ok(full);
    }
    serde_json::to_value(Listed {
        id: record.id.clone(),
        record: None,
    })
    .map_err(to_store)
}

/// Store a record, with its metadata.
async fn write_record(
    kv: &impl KvStore,
    storage_key: &str,
    record: &KeyRecord,
) -> Result<(), KeyError> {
    let text = serde_json::to_string(record).map_err(to_store)?;
    kv.put_text_with_metadata(storage_key, &text, &metadata(record)?)
        .await?;
    Ok(())
}

/// The record stored under `storage_key`, if it is one.
async fn read_record(kv: &impl KvStore, storage_key: &str) -> Result<Option<KeyRecord>, KeyError> {
    let text = kv.get_text(storage_key).await?;
    Ok(text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok()))
}

/// Where the id index names the record made with `id`.
pub fn id_index_key(id: &str) -> String {
    format!("{ID_INDEX_PREFIX}{id}")
}

/// The prefix of the entries marking each record made with `id`.
fn id_entries_prefix(id: &str) -> String {
    format!("{ID_INDEX_PREFIX}{id}:")
}

/// The entry marking the record stored at `storage_key` as made with `id`.
fn id_entry_key(id: &str, storage_key: &str) -> String {
    let hash = storage_key.strip_prefix(KEY_PREFIX).unwrap_or(storage_key);
    format!("{}{hash}", id_entries_prefix(id))
}

/// Put a record in the id index: its entry, and the index's pointer to it.
async fn index(kv: &impl KvStore, id: &str, storage_key: &str) -> Result<(), KeyError> {
    kv.put_text(&id_entry_key(id, storage_key), storage_key)
        .await?;
    kv.put_text(&id_index_key(id), storage_key).await?;
    Ok(())
}

/// The stored records, as far as one call could read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Each record with where it is stored, oldest first (by `created_at_ms`, records without it
    /// first, then by id).
    pub records: Vec<(String, KeyRecord)>,
    /// Records without metadata left unread: past the cap on reads one by one.
    pub unread: usize,
    /// The listing stopped after `MAX_LIST_PAGES` pages; later records are not in it.
    pub truncated: bool,
    /// Where the records read without metadata saying they are indexed are stored.
    unindexed: Vec<String>,
}

impl Listing {
    /// Every stored record is in it.
    pub fn complete(&self) -> bool {
        self.unread == 0 && !self.truncated
    }
}

/// Every stored key record (values that are not records are left out): from the listing's
/// metadata, reading one by one only records without it, at most `max_reads` of them.
pub async fn list(kv: &impl KvStore, max_reads: usize) -> Result<Listing, KeyError> {
    let mut out = Listing::default();
    let (mut cursor, mut pages, mut reads) = (None::<String>, 0, 0);
    loop {
        let page = kv.list_page(KEY_PREFIX, cursor.as_deref()).await?;
        pages += 1;
        for key in page.keys {
            let listed = key
                .metadata
                .and_then(|m| serde_json::from_value::<Listed>(m).ok());
            let indexed = listed.is_some();
            if let Some(record) = listed.and_then(|l| l.record) {
                out.records.push((key.name, record));
                continue;
            }
            if reads >= max_reads {
                out.unread += 1;
                continue;
            }
            reads += 1;
            if let Some(record) = read_record(kv, &key.name).await? {
                if !indexed {
                    out.unindexed.push(key.name.clone());
                }
                out.records.push((key.name, record));
            }
        }
        match page.cursor {
            Some(next) if pages < MAX_LIST_PAGES => cursor = Some(next),
            Some(_) => {
                out.truncated = true;
                break;
            }
            None => break,
        }
    }
    out.records.sort_by(|(_, a), (_, b)| {
        let at = |r: &KeyRecord| r.created_at_ms.unwrap_or(f64::NEG_INFINITY);
        at(a).total_cmp(&at(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Whether every record is known to be in the id index.
async fn index_complete(kv: &impl KvStore) -> Result<bool, KeyError> {
    Ok(kv.get_text(INDEX_COMPLETE_KEY).await?.is_some())
}

/// When `listing` read every record: index those read without metadata and say the index is
/// complete. (A listing cut short by `max_reads` indexes nothing: it would write the same entries
/// again on every call and never finish; the CLI, which reads without a cap, finishes it.) Each
/// id's pointer is written once, however many records share the id: KV takes about one write a
/// second to one key.
async fn index_listing(kv: &impl KvStore, listing: &Listing) -> Result<(), KeyError> {
    if !listing.complete() {
        return Ok(());
    }
    let mut pointed: Vec<&str> = Vec::new();
    for name in &listing.unindexed {
        if let Some((_, record)) = listing.records.iter().find(|(n, _)| n == name) {
            kv.put_text(&id_entry_key(&record.id, name), name).await?;
            if !pointed.contains(&record.id.as_str()) {
                pointed.push(&record.id);
                kv.put_text(&id_index_key(&record.id), name).await?;
            }
        }
    }
    kv.put_text(INDEX_COMPLETE_KEY, "1").await?;
    Ok(())
}

/// Until every record is known to be indexed: list them all and index them when the listing
/// read them all (`index_listing`). The listing, or `None` when the index was complete already.
async fn index_older(kv: &impl KvStore, max_reads: usize) -> Result<Option<Listing>, KeyError> {
    if index_complete(kv).await? {
        return Ok(None);
    }
    let listing = list(kv, max_reads).await?;
    index_listing(kv, &listing).await?;
    Ok(Some(listing))
}

/// Why a listing cut short leaves a question open: how much was not read.
fn unread_part(l: &Listing) -> String {
    format!(
        "{} records were not read{}",
        l.unread,
        if l.truncated {
            " and the listing stopped early"
        } else {
            ""
        }
    )
}

/// Make a key and store its record, refusing an id that is taken. Reads the id index, not every
/// record (but for records made before the index, until they are indexed: at most `max_reads`
/// of those are read one by one).
pub async fn create(
    kv: &impl KvStore,
    bytes: &[u8; KEY_BYTES],
    new: NewKey,
    now_ms: f64,
    max_reads: usize,
) -> Result<Minted, KeyError> {
    let minted = mint(bytes, new, now_ms)?;
    let id = &minted.record.id;
    let taken = || KeyError::Exists(format!("a key with id {id} exists already"));
    // (1) The index: a key made a moment ago is there, although a listing may not show it yet.
    if let Some(target) = kv.get_text(&id_index_key(id)).await? {
        if read_record(kv, &target).await?.is_some_and(|r| &r.id == id) {
            return Err(taken());
        }
    }
    // (2) Records made before the index, until all are in it.
    if let Some(listing) = index_older(kv, max_reads).await? {
        if listing.records.iter().any(|(_, r)| &r.id == id) {
            return Err(taken());
        }
        if !listing.complete() {
            // An unread record may hold the id: a second key under it could not be revoked
            // with it.
            return Err(KeyError::Incomplete(format!(
                "cannot tell whether id {id} is taken: {}; `taskrouter keys create` (which reads every record) indexes them once",
                unread_part(&listing)
            )));
        }
    }
    // (3) Never write over another key's record (only a broken random source could collide).
    if kv.get_text(&minted.storage_key).await?.is_some() {
        return Err(KeyError::Exists(
            "the new key collides with a stored one; make it again".into(),
        ));
    }
    // (4) Index first: a record is never stored where its id cannot find it.
    index(kv, id, &minted.storage_key).await?;
    write_record(kv, &minted.storage_key, &minted.record).await?;
    Ok(minted)
}

/// Mark every record with this id revoked (the records stay, so the id stays taken); the records.
/// Found through the index (the record it names and every record's entry under the id), and, until
/// every record is indexed or when the index finds none (a record written by hand), through the
/// listing, reading at most `max_reads` records without metadata one by one.
pub async fn revoke(
    kv: &impl KvStore,
    id: &str,
    max_reads: usize,
) -> Result<Vec<KeyRecord>, KeyError> {
    let mut found: Vec<(String, KeyRecord)> = Vec::new();
    let add = |found: &mut Vec<(String, KeyRecord)>, name: String, record: KeyRecord| {
        if record.id == id && !found.iter().any(|(n, _)| *n == name) {
            found.push((name, record));
        }
    };
    // (1) The index's record: found at once, even just after it was made.
    if let Some(target) = kv.get_text(&id_index_key(id)).await? {
        if let Some(record) = read_record(kv, &target).await? {
            add(&mut found, target, record);
        }
    }
    // (2) Each record's entry under the id: two creates that raced both made one.
    let prefix = id_entries_prefix(id);
    let (mut cursor, mut pages) = (None::<String>, 0);
    loop {
        let page = kv.list_page(&prefix, cursor.as_deref()).await?;
        pages += 1;
        for key in page.keys {
            let Some(hash) = key.name.strip_prefix(&prefix) else {
                continue;
            };
            let target = format!("{KEY_PREFIX}{hash}");
            if !found.iter().any(|(n, _)| *n == target) {
                if let Some(record) = read_record(kv, &target).await? {
                    add(&mut found, target, record);
                }
            }
        }
        match page.cursor {
            Some(next) if pages < MAX_LIST_PAGES => cursor = Some(next),
            _ => break,
        }
    }
    // (3) The listing: records made before the index, or, when the index has none, by hand.
    let complete = index_complete(kv).await?;
    let listing = if !complete || found.is_empty() {
        Some(list(kv, max_reads).await?)
    } else {
        None
    };
    // A listed record may be its metadata's copy: the stored value (what the gateway reads) is
    // what gets revoked.
    for (name, listed) in listing.iter().flat_map(|l| l.records.iter()) {
        if listed.id == id && !found.iter().any(|(n, _)| n == name) {
            let stored = read_record(kv, name)
                .await?
                .unwrap_or_else(|| listed.clone());
            add(&mut found, name.clone(), stored);
        }
    }
    let cut_short = listing.as_ref().filter(|l| !l.complete());
    if found.is_empty() {
        return Err(match cut_short {
            Some(l) => KeyError::Incomplete(format!(
                "no key with id {id} among the records read; {}",
                unread_part(l)
            )),
            None => KeyError::NotFound(format!("no key with id {id}")),
        });
    }
    // (4) Revoke each that is not revoked yet, before anything else is written.
    for (name, record) in found.iter_mut().filter(|(_, r)| !r.revoked) {
        record.revoked = true;
        write_record(kv, name, record).await?;
    }
    // (5) A listing cut short may have missed a record with the id: say so, after revoking what
    // was found.
    if let Some(l) = cut_short {
        return Err(KeyError::Incomplete(format!(
            "revoked {} record(s) with id {id}, but {}: others with the id may still be live; `taskrouter keys revoke {id}` reads every record",
            found.len(),
            unread_part(l)
        )));
    }
    // (6) Older records, now all read: indexed (after the revocation, which must not wait on it).
    if let (false, Some(l)) = (complete, &listing) {
        index_listing(kv, l).await?;
    }
    Ok(found.into_iter().map(|(_, r)| r).collect())
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

    fn with_id(id: &str) -> NewKey {
        NewKey {
            id: Some(id.into()),
            ..named("n")
        }
    }

    fn ids(listing: &Listing) -> Vec<&str> {
        listing.records.iter().map(|(_, r)| r.id.as_str()).collect()
    }

    /// A record as an older version (or a hand) wrote it: no metadata, not in the index.
    fn older(kv: &MemoryKv, seed: u8, id: &str) -> String {
        let at = storage_key(&key_text(&[seed; KEY_BYTES]));
        kv.insert(&at, &format!(r#"{{"id": "{id}", "name": "old"}}"#));
        at
    }

    fn revoked(kv: &MemoryKv, at: &str) -> bool {
        let text = block_on(kv.get_text(at)).unwrap().unwrap();
        serde_json::from_str::<KeyRecord>(&text).unwrap().revoked
    }

    #[test]
    fn create_list_revoke() {
        let kv = MemoryKv::default();
        block_on(create(&kv, &[1; KEY_BYTES], with_id("b"), 10.0, 10)).unwrap();
        block_on(create(&kv, &[2; KEY_BYTES], with_id("a"), 10.0, 10)).unwrap();
        block_on(create(&kv, &[3; KEY_BYTES], with_id("c"), 5.0, 10)).unwrap();
        let listing = block_on(list(&kv, 10)).unwrap();
        assert_eq!(ids(&listing), ["c", "a", "b"], "by creation time, then id");
        assert!(listing.complete());
        assert!(matches!(
            block_on(create(&kv, &[4; KEY_BYTES], with_id("a"), 11.0, 10)),
            Err(KeyError::Exists(_))
        ));
        let stored = storage_key(&key_text(&[2; KEY_BYTES]));
        assert_eq!(
            block_on(kv.get_text(&id_index_key("a"))).unwrap(),
            Some(stored.clone())
        );
        let done = block_on(revoke(&kv, "a", 10)).unwrap();
        assert!(done.len() == 1 && done[0].revoked);
        assert!(revoked(&kv, &stored));
        assert!(matches!(
            block_on(revoke(&kv, "zz", 10)),
            Err(KeyError::NotFound(_))
        ));
    }

    #[test]
    fn the_listing_reads_metadata_not_each_record() {
        let kv = MemoryKv::default();
        for seed in 1..=5 {
            block_on(create(&kv, &[seed; KEY_BYTES], named("n"), 1.0, 10)).unwrap();
        }
        let before = kv.reads();
        let listing = block_on(list(&kv, 10)).unwrap();
        assert_eq!(listing.records.len(), 5);
        assert_eq!(kv.reads(), before, "no read per record");
        let at = &listing.records[0].0;
        assert_eq!(
            kv.metadata(at).unwrap()["record"]["id"],
            listing.records[0].1.id
        );
    }

    #[test]
    fn records_without_metadata_are_read_up_to_the_cap() {
        let kv = MemoryKv::default();
        for seed in 1..=5 {
            older(&kv, seed, &format!("old-{seed}"));
        }
        block_on(create(&kv, &[9; KEY_BYTES], with_id("new"), 1.0, 10)).unwrap();
        let before = kv.reads();
        let listing = block_on(list(&kv, 3)).unwrap();
        assert_eq!(kv.reads() - before, 3);
        assert_eq!((listing.records.len(), listing.unread), (4, 2));
        assert!(!listing.complete());
        // A record too large for KV's metadata keeps its id there and is read.
        let big = NewKey {
            allowed_tasks: Some(vec!["t".repeat(900), "u".repeat(300)]),
            ..with_id("big")
        };
        let m = block_on(create(&kv, &[8; KEY_BYTES], big, 2.0, 10)).unwrap();
        assert_eq!(
            kv.metadata(&m.storage_key),
            Some(serde_json::json!({"id": "big"}))
        );
        let listing = block_on(list(&kv, 10)).unwrap();
        assert!(ids(&listing).contains(&"big") && listing.complete());
    }

    #[test]
    fn listing_stops_after_its_pages() {
        let kv = MemoryKv::default();
        kv.set_page_size(2);
        for seed in 1..=25 {
            block_on(create(&kv, &[seed; KEY_BYTES], named("n"), 1.0, 100)).unwrap();
        }
        let listing = block_on(list(&kv, 100)).unwrap();
        assert_eq!(listing.records.len(), 2 * MAX_LIST_PAGES);
        assert!(listing.truncated && !listing.complete());
    }

    #[test]
    fn a_key_made_a_moment_ago_is_found_through_the_index() {
        let kv = MemoryKv::default();
        let m = block_on(create(&kv, &[1; KEY_BYTES], with_id("fresh"), 1.0, 10)).unwrap();
        // KV's listing has not caught up with the writes yet.
        kv.hide_from_list(&m.storage_key);
        let entry = format!("{ID_INDEX_PREFIX}fresh:{}", hash_key(&m.key));
        kv.hide_from_list(&entry);
        assert!(matches!(
            block_on(create(&kv, &[2; KEY_BYTES], with_id("fresh"), 2.0, 10)),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(block_on(revoke(&kv, "fresh", 10)).unwrap().len(), 1);
        assert!(revoked(&kv, &m.storage_key));
    }

    #[test]
    fn every_record_with_the_id_is_revoked() {
        let kv = MemoryKv::default();
        // Two creates that raced: each made its entry; the index names the later.
        let a = block_on(create(&kv, &[1; KEY_BYTES], with_id("twin"), 1.0, 10)).unwrap();
        kv.remove(&id_index_key("twin"));
        let b = block_on(create(&kv, &[2; KEY_BYTES], with_id("twin"), 1.0, 10)).unwrap();
        // And one made before the index, with the same id.
        let old = older(&kv, 3, "twin");
        kv.remove(INDEX_COMPLETE_KEY);
        let done = block_on(revoke(&kv, "twin", 10)).unwrap();
        assert_eq!(done.len(), 3);
        for at in [&a.storage_key, &b.storage_key, &old] {
            assert!(revoked(&kv, at), "{at}");
        }
        // Revoked already: still 200, nothing is written again.
        assert_eq!(block_on(revoke(&kv, "twin", 10)).unwrap().len(), 3);
    }

    #[test]
    fn older_twins_get_one_pointer_and_an_entry_each_and_are_both_revoked() {
        let kv = MemoryKv::default();
        let a = older(&kv, 1, "twin");
        let b = older(&kv, 2, "twin");
        let revoked_now = block_on(revoke(&kv, "twin", 10)).unwrap();
        assert_eq!(revoked_now.len(), 2);
        assert!(revoked(&kv, &a) && revoked(&kv, &b));
        // Indexed after the revocation: one pointer, an entry per record, the index complete.
        assert!(block_on(kv.get_text(&id_index_key("twin")))
            .unwrap()
            .is_some());
        for at in [&a, &b] {
            let entry = id_entry_key("twin", at);
            assert_eq!(
                block_on(kv.get_text(&entry)).unwrap().as_deref(),
                Some(at.as_str())
            );
        }
        assert!(block_on(kv.get_text(INDEX_COMPLETE_KEY)).unwrap().is_some());
    }

    #[test]
    fn older_records_are_indexed_once_then_nothing_is_listed() {
        let kv = MemoryKv::default();
        let old = older(&kv, 1, "legacy");
        assert!(matches!(
            block_on(create(&kv, &[2; KEY_BYTES], with_id("legacy"), 1.0, 10)),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(
            block_on(kv.get_text(&id_index_key("legacy"))).unwrap(),
            Some(old.clone())
        );
        assert!(block_on(kv.get_text(INDEX_COMPLETE_KEY)).unwrap().is_some());
        // Now listed nowhere, the old record is still found through the index.
        kv.hide_from_list(&old);
        assert!(matches!(
            block_on(create(&kv, &[2; KEY_BYTES], with_id("legacy"), 1.0, 10)),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(block_on(revoke(&kv, "legacy", 10)).unwrap().len(), 1);
        assert!(revoked(&kv, &old));
    }

    #[test]
    fn a_listing_cut_short_indexes_nothing() {
        let kv = MemoryKv::default();
        for seed in 1..=3 {
            older(&kv, seed, &format!("old-{seed}"));
        }
        // With the cap, create cannot tell whether an unread record holds the id: it refuses,
        // writing nothing, rather than make a second key revoke could miss.
        let refused = block_on(create(&kv, &[9; KEY_BYTES], with_id("new"), 1.0, 2));
        match refused {
            Err(KeyError::Incomplete(m)) => assert!(m.contains("1 records were not read"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(block_on(kv.get_text(&id_index_key("new")))
            .unwrap()
            .is_none());
        assert!(block_on(kv.get_text(INDEX_COMPLETE_KEY)).unwrap().is_none());
        // Revoking with the cap revokes what it found, and says what it could not read.
        match block_on(revoke(&kv, "old-1", 2)) {
            Err(KeyError::Incomplete(m)) => assert!(m.contains("were not read"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(block_on(kv.get_text(INDEX_COMPLETE_KEY)).unwrap().is_none());
        assert!(block_on(kv.get_text(&id_index_key("old-1")))
            .unwrap()
            .is_none());
        // Without the cap (the CLI), the older records are indexed and the index is complete.
        block_on(create(
            &kv,
            &[8; KEY_BYTES],
            with_id("newer"),
            1.0,
            usize::MAX,
        ))
        .unwrap();
        assert!(block_on(kv.get_text(INDEX_COMPLETE_KEY)).unwrap().is_some());
        for seed in 1..=3 {
            let id = format!("old-{seed}");
            assert!(
                block_on(kv.get_text(&id_index_key(&id))).unwrap().is_some(),
                "{id}"
            );
        }
    }

    #[test]
    fn an_id_not_among_the_records_read_is_not_called_missing() {
        let kv = MemoryKv::default();
        let mut stored: Vec<(String, String)> = (1..=3)
            .map(|seed| {
                (
                    older(&kv, seed, &format!("old-{seed}")),
                    format!("old-{seed}"),
                )
            })
            .collect();
        // The one listed last, so it is past the cap.
        stored.sort();
        let last = &stored[2].1;
        match block_on(revoke(&kv, last, 1)) {
            Err(KeyError::Incomplete(m)) => assert!(m.contains("2 records were not read"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(block_on(revoke(&kv, last, 10)).unwrap().len(), 1);
    }
}
