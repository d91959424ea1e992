//! Per-key request and spend limits, counted in the isolate (a fixed one-minute window for
//! requests, a UTC day for spend): for deployments without the keys' Durable Objects, and when an
//! object cannot be reached and a limit fails open. Each isolate counts on its own, so across many
//! isolates a key can exceed its limits by up to a factor of their number (docs/operations.md).

use crate::access::auth::KeyRecord;
use crate::access::ledger::{DAY_MS, MINUTE_MS};
use crate::error::{ApiError, ErrorCode};
use std::cell::RefCell;
use std::collections::HashMap;

/// Keys tracked per isolate at most; past this the counts start over.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy, Default)]
struct Ledger {
    minute: f64,
    requests: u32,
    day: f64,
    spend_usd: f64,
}

#[derive(Default)]
pub struct Limits {
    ledgers: RefCell<HashMap<String, Ledger>>,
}

/// A rejection: the error, and when to come back (seconds), for `retry-after`.
#[derive(Debug)]
pub struct Exceeded {
    pub error: ApiError,
    pub retry_after_s: u64,
}

impl Exceeded {
    /// The key's requests for this minute are used up, until `until_ms`.
    pub fn requests(max: u32, until_ms: f64, now_ms: f64) -> Exceeded {
        Exceeded::new(
            format!("this key may make {max} requests a minute"),
            until_ms,
            now_ms,
        )
    }

    /// The key's spend for the day is used up, until `until_ms`.
    pub fn spend(max: f64, until_ms: f64, now_ms: f64) -> Exceeded {
        Exceeded::new(
            format!("this key has spent its ${max} for today (UTC)"),
            until_ms,
            now_ms,
        )
    }

    /// A `key_limit_exceeded` refusal saying `message`, to come back at `until_ms` (in whole
    /// seconds, at least one).
    pub fn new(message: String, until_ms: f64, now_ms: f64) -> Exceeded {
        Exceeded {
            error: ApiError::new(ErrorCode::KeyLimitExceeded, message),
            retry_after_s: ((until_ms - now_ms) / 1000.0).ceil().max(1.0) as u64,
        }
    }
}

impl Limits {
    /// Count one request for `key`, or refuse it if a limit is reached.
    pub fn admit(&self, key: &KeyRecord, now_ms: f64) -> Result<(), Exceeded> {
        if key.requests_per_minute.is_none() && key.spend_usd_per_day.is_none() {
            return Ok(());
        }
        let mut ledgers = self.ledgers.borrow_mut();
        if ledgers.len() >= MAX_KEYS && !ledgers.contains_key(&key.id) {
            ledgers.clear();
        }
        let l = ledgers.entry(key.id.clone()).or_default();
        let (minute, day) = ((now_ms / MINUTE_MS).floor(), (now_ms / DAY_MS).floor());
        if l.minute != minute {
            l.minute = minute;
            l.requests = 0;
        }
        if l.day != day {
            l.day = day;
            l.spend_usd = 0.0;
        }
        if let Some(max) = key.spend_usd_per_day {
            if l.spend_usd >= max {
                return Err(Exceeded::spend(max, (day + 1.0) * DAY_MS, now_ms));
            }
        }
        if let Some(max) = key.requests_per_minute {
            if l.requests >= max {
                return Err(Exceeded::requests(max, (minute + 1.0) * MINUTE_MS, now_ms));
            }
            l.requests += 1;
        }
        Ok(())
    }

    /// Add what a served request cost to its key's day.
    pub fn add_spend(&self, key_id: &str, cost_usd: f64, now_ms: f64) {
        if let Some(l) = self.ledgers.borrow_mut().get_mut(key_id) {
            let day = (now_ms / DAY_MS).floor();
            if l.day != day {
                l.day = day;
                l.spend_usd = 0.0;
            }
            l.spend_usd += cost_usd;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rpm: Option<u32>, spend: Option<f64>) -> KeyRecord {
        KeyRecord {
            id: "k".into(),
            requests_per_minute: rpm,
            spend_usd_per_day: spend,
            ..KeyRecord::default()
        }
    }

    #[test]
    fn requests_per_minute() {
        let l = Limits::default();
        let k = key(Some(2), None);
        assert!(l.admit(&k, 1_000.0).is_ok());
        assert!(l.admit(&k, 2_000.0).is_ok());
        let e = l.admit(&k, 30_000.0).err().unwrap();
        assert_eq!(
            (e.error.code, e.retry_after_s),
            (ErrorCode::KeyLimitExceeded, 30)
        );
        assert!(l.admit(&k, 60_000.0).is_ok(), "a new minute");
        assert!(Limits::default().admit(&key(None, None), 0.0).is_ok());
    }

    #[test]
    fn spend_per_day() {
        let l = Limits::default();
        let k = key(None, Some(0.01));
        assert!(l.admit(&k, 0.0).is_ok());
        l.add_spend("k", 0.006, 1.0);
        assert!(l.admit(&k, 2.0).is_ok());
        l.add_spend("k", 0.006, 3.0);
        let e = l.admit(&k, 4.0).err().unwrap();
        assert!(e.error.message.contains("$0.01"));
        assert!(l.admit(&k, DAY_MS + 1.0).is_ok(), "a new day");
    }
}
