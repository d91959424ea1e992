//! A gateway key's limits as this isolate holds them when they are shared across the edge: the
//! request tokens and the spend slice leased from the key's Durable Object (`ledger`), spent here
//! without a round trip, and renewed in the background when half gone. A request waits for the
//! object only when this isolate holds nothing usable for the key (its first request, or tokens
//! spent faster than a renewal could come back).
//!
//! Lease sizes are a fraction of the limit (`LEASE_FRACTION`, 0.1 by default): 10 % of
//! `requests_per_minute` (at least one request), 10 % of `spend_usd_per_day`.

use crate::access::auth::KeyRecord;
use crate::access::ledger::{Grant, LeaseAsk, DAY_MS};
use crate::access::limits::Exceeded;
use crate::error::{ApiError, ErrorCode};
use crate::ports::{call_json, Clock, Coordinator, SharedObject, StoreError};
use std::cell::RefCell;
use std::collections::HashMap;

/// Keys held per isolate at most; past this the holdings start over.
const MAX_KEYS: usize = 10_000;

/// What the isolate holds for one key.
#[derive(Debug, Clone, Default)]
struct Held {
    /// The key's limits and lease sizes, as of its last request.
    requests_per_minute: Option<u32>,
    spend_usd_per_day: Option<f64>,
    want_requests: u32,
    want_spend_usd: f64,
    /// Whether a grant has ever come back.
    granted: bool,
    tokens: u32,
    tokens_until_ms: f64,
    /// The slice held, and the running total of spend the object knew when it granted it.
    slice_usd: f64,
    slice_base_usd: f64,
    slice_day: f64,
    /// The newest grant applied (older answers that arrive later do not replace its slice).
    seq: u64,
    /// What this isolate's answers for the key cost today, in all, and the day.
    spent_today_usd: f64,
    day: f64,
    /// The running total in the last report sent.
    reported_usd: f64,
    /// A background call is on its way.
    asking: bool,
    /// The object refused: not asked again before this time.
    refused_until_ms: f64,
    refusal: Option<Refusal>,
}

impl Held {
    fn spend_left(&self) -> f64 {
        self.slice_usd - (self.spent_today_usd - self.slice_base_usd)
    }

    /// The slice is half gone, or half a lease's worth is waiting to be reported.
    fn low_spend(&self) -> bool {
        self.spend_usd_per_day.is_some()
            && (self.spend_left() <= self.slice_usd / 2.0
                || self.spent_today_usd - self.reported_usd >= self.want_spend_usd / 2.0)
    }

    fn roll_day(&mut self, now_ms: f64) {
        let today = (now_ms / DAY_MS).floor();
        if self.day != today {
            self.day = today;
            self.spent_today_usd = 0.0;
            self.reported_usd = 0.0;
        }
        if self.slice_day != today {
            self.slice_usd = 0.0;
            self.slice_base_usd = 0.0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Requests,
    Spend,
}

/// What the isolate can say about a request for a key with limits.
#[derive(Debug)]
pub enum Verdict {
    /// Admitted from what is held; `renew` asks for a background renewal.
    Admit { renew: bool },
    /// Nothing usable is held: ask the object now, then look again.
    Ask,
    /// The object has refused the key for now.
    Refuse(Exceeded),
}

/// The leases of every key this isolate served.
#[derive(Debug)]
pub struct Leases {
    /// Who this isolate is to the objects.
    isolate: String,
    held: RefCell<HashMap<String, Held>>,
}

impl Leases {
    pub fn new(isolate: String) -> Self {
        Leases {
            isolate,
            held: RefCell::new(HashMap::new()),
        }
    }

    /// Admit one request for `key` (which has limits) from what is held.
    pub fn admit(&self, key: &KeyRecord, fraction: f64, now_ms: f64) -> Verdict {
        let mut all = self.held.borrow_mut();
        if all.len() >= MAX_KEYS && !all.contains_key(&key.id) {
            all.clear();
        }
        let h = all.entry(key.id.clone()).or_default();
        (h.want_requests, h.want_spend_usd) = lease_size(key, fraction);
        h.requests_per_minute = key.requests_per_minute;
        h.spend_usd_per_day = key.spend_usd_per_day;
        h.roll_day(now_ms);
        if h.tokens_until_ms <= now_ms {
            h.tokens = 0;
        }
        let needs_tokens = key.requests_per_minute.is_some() && h.tokens == 0;
        let needs_spend = key.spend_usd_per_day.is_some() && h.spend_left() <= 0.0;
        if !h.granted || needs_tokens || needs_spend {
            if let (Some(refusal), true) = (h.refusal, now_ms < h.refused_until_ms) {
                let still = match refusal {
                    Refusal::Requests => needs_tokens,
                    Refusal::Spend => needs_spend,
                };
                if still {
                    return Verdict::Refuse(exceeded(key, refusal, h.refused_until_ms, now_ms));
                }
            }
            return Verdict::Ask;
        }
        if key.requests_per_minute.is_some() {
            h.tokens -= 1;
        }
        let low_tokens = key.requests_per_minute.is_some() && h.tokens <= h.want_requests / 2;
        Verdict::Admit {
            renew: !h.asking && (low_tokens || h.low_spend()),
        }
    }

    /// The background call to make to the key's object; `None` when one is already on its way
    /// (or the key was never admitted here).
    pub fn ask(&self, key_id: &str) -> Option<LeaseAsk> {
        let mut all = self.held.borrow_mut();
        let h = all.get_mut(key_id)?;
        if h.asking {
            return None;
        }
        h.asking = true;
        Some(self.lease_ask(h))
    }

    /// The call a request waits for when nothing usable is held (made even while a background
    /// call is on its way: reports are running totals, so the object counts them once).
    pub fn ask_now(&self, key_id: &str) -> Option<LeaseAsk> {
        let mut all = self.held.borrow_mut();
        let h = all.get_mut(key_id)?;
        Some(self.lease_ask(h))
    }

    fn lease_ask(&self, h: &mut Held) -> LeaseAsk {
        h.reported_usd = h.spent_today_usd;
        LeaseAsk {
            isolate: self.isolate.clone(),
            requests_per_minute: h.requests_per_minute,
            spend_usd_per_day: h.spend_usd_per_day,
            want_requests: h.want_requests,
            want_spend_usd: h.want_spend_usd,
            spent_today_usd: h.spent_today_usd,
            day: h.day,
        }
    }

    /// The object's answer to `ask`: its tokens add to those held; its slice replaces the one
    /// held unless a newer grant came first.
    pub fn granted(&self, key_id: &str, ask: &LeaseAsk, grant: &Grant, now_ms: f64) {
        let mut all = self.held.borrow_mut();
        let Some(h) = all.get_mut(key_id) else {
            return;
        };
        h.asking = false;
        h.granted = true;
        if h.tokens_until_ms <= now_ms {
            h.tokens = 0;
        }
        h.tokens += grant.requests;
        h.tokens_until_ms = h.tokens_until_ms.max(grant.requests_until_ms);
        if grant.seq > h.seq {
            h.seq = grant.seq;
            h.slice_usd = grant.spend_usd;
            h.slice_day = grant.day;
            h.slice_base_usd = if ask.day == grant.day {
                ask.spent_today_usd
            } else {
                0.0
            };
        }
        h.roll_day(now_ms);
        h.refusal = None;
        let out_of_tokens = h.requests_per_minute.is_some() && h.tokens == 0;
        let out_of_spend = h.spend_usd_per_day.is_some() && h.spend_left() <= 0.0;
        if out_of_spend {
            h.refusal = Some(Refusal::Spend);
            h.refused_until_ms = grant.day_ends_ms;
        } else if out_of_tokens {
            h.refusal = Some(Refusal::Requests);
            h.refused_until_ms = grant.minute_ends_ms;
        }
    }

    /// A call failed: a later one carries the running total again.
    pub fn failed(&self, key_id: &str) {
        if let Some(h) = self.held.borrow_mut().get_mut(key_id) {
            h.asking = false;
            h.reported_usd = 0.0;
        }
    }

    /// What a served request cost; `true` when the slice is low enough (or enough unreported)
    /// to renew in the background.
    pub fn add_spend(&self, key_id: &str, cost_usd: f64, now_ms: f64) -> bool {
        let mut all = self.held.borrow_mut();
        let Some(h) = all.get_mut(key_id) else {
            return false;
        };
        if h.spend_usd_per_day.is_none() || cost_usd.is_nan() || cost_usd <= 0.0 {
            return false;
        }
        h.roll_day(now_ms);
        h.spent_today_usd += cost_usd;
        !h.asking && h.low_spend()
    }
}

/// Call the key's object with `ask` (from `Leases::ask` or `ask_now`) and take its grant.
pub async fn call(
    leases: &Leases,
    coordinator: &impl Coordinator,
    clock: &impl Clock,
    key_id: &str,
    ask: LeaseAsk,
    timeout_ms: u64,
) -> Result<(), StoreError> {
    let object = SharedObject::KeyLimits;
    match call_json::<_, Grant>(coordinator, object, key_id, &ask, timeout_ms).await {
        Ok(grant) => {
            leases.granted(key_id, &ask, &grant, clock.now_ms());
            Ok(())
        }
        Err(e) => {
            leases.failed(key_id);
            Err(e)
        }
    }
}

/// Tokens and dollars one lease asks for.
fn lease_size(key: &KeyRecord, fraction: f64) -> (u32, f64) {
    let requests = key
        .requests_per_minute
        .map_or(0, |r| ((f64::from(r) * fraction).ceil() as u32).max(1));
    let spend = key.spend_usd_per_day.map_or(0.0, |s| s * fraction);
    (requests, spend)
}

fn exceeded(key: &KeyRecord, refusal: Refusal, until_ms: f64, now_ms: f64) -> Exceeded {
    let retry_after_s = ((until_ms - now_ms) / 1000.0).ceil().max(1.0) as u64;
    let message = match refusal {
        Refusal::Requests => format!(
            "this key may make {} requests a minute",
            key.requests_per_minute.unwrap_or(0)
        ),
        Refusal::Spend => format!(
            "this key has spent its ${} for today (UTC)",
            key.spend_usd_per_day.unwrap_or(0.0)
        ),
    };
    Exceeded {
        error: ApiError::new(ErrorCode::KeyLimitExceeded, message),
        retry_after_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ledger::{KeyLedger, MINUTE_MS};

    fn key(rpm: Option<u32>, cap: Option<f64>) -> KeyRecord {
        KeyRecord {
            id: "k".into(),
            requests_per_minute: rpm,
            spend_usd_per_day: cap,
            ..KeyRecord::default()
        }
    }

    /// One isolate against the object: admit, asking when told, until refused.
    fn serve(leases: &Leases, ledger: &mut KeyLedger, k: &KeyRecord, now: f64) -> (bool, u32) {
        let mut calls = 0;
        loop {
            match leases.admit(k, 0.1, now) {
                Verdict::Admit { renew } => {
                    if renew {
                        let ask = leases.ask(&k.id).unwrap();
                        calls += 1;
                        let grant = ledger.lease(&ask, now);
                        leases.granted(&k.id, &ask, &grant, now);
                    }
                    return (true, calls);
                }
                Verdict::Refuse(_) => return (false, calls),
                Verdict::Ask => {
                    if calls > 0 {
                        return (false, calls);
                    }
                    let ask = leases.ask_now(&k.id).unwrap();
                    calls += 1;
                    let grant = ledger.lease(&ask, now);
                    leases.granted(&k.id, &ask, &grant, now);
                }
            }
        }
    }

    #[test]
    fn two_isolates_share_a_minute_and_call_the_object_once_per_lease() {
        let k = key(Some(100), None);
        let mut ledger = KeyLedger::default();
        let (a, b) = (Leases::new("a".into()), Leases::new("b".into()));
        let t = 5.0 * MINUTE_MS;
        let (mut served, mut calls) = (0, 0);
        for i in 0..300 {
            let isolate = if i % 2 == 0 { &a } else { &b };
            let (ok, c) = serve(isolate, &mut ledger, &k, t + f64::from(i));
            served += u32::from(ok);
            calls += c;
        }
        // Tokens lapse at the end of the next minute: nothing is served above the limit here.
        assert_eq!(served, 100);
        // Leases of 10, renewed when half gone: about one call per five requests.
        assert!(calls <= 100 / 5 + 4, "{calls} calls");
        // Refused without asking again until the minute turns.
        let before = calls;
        let (ok, c) = serve(&a, &mut ledger, &k, t + 500.0);
        assert_eq!((ok, c), (false, 0), "{before}");
        // The next minute serves again.
        assert!(serve(&a, &mut ledger, &k, t + MINUTE_MS).0);
    }

    #[test]
    fn spend_is_reported_with_renewals_and_a_refusal_says_when_to_come_back() {
        let k = key(None, Some(1.0));
        let mut ledger = KeyLedger::default();
        let a = Leases::new("a".into());
        let mut served = 0.0;
        for i in 0..100 {
            let now = f64::from(i);
            if !serve(&a, &mut ledger, &k, now).0 {
                break;
            }
            served += 0.03;
            if a.add_spend(&k.id, 0.03, now) {
                let ask = a.ask(&k.id).unwrap();
                let grant = ledger.lease(&ask, now);
                a.granted(&k.id, &ask, &grant, now);
            }
        }
        // The cap is 1.0; one request's cost past the slice at most.
        assert!((1.0..=1.0 + 0.03 + 1e-9).contains(&served), "{served}");
        match a.admit(&k, 0.1, 200.0) {
            Verdict::Refuse(e) => {
                assert_eq!(e.error.code, ErrorCode::KeyLimitExceeded);
                assert!(e.retry_after_s > 80_000, "{}", e.retry_after_s);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_are_running_totals_and_the_newest_slice_wins() {
        let k = key(None, Some(1.0));
        let a = Leases::new("a".into());
        let mut ledger = KeyLedger::default();
        assert!(matches!(a.admit(&k, 0.1, 0.0), Verdict::Ask));
        let first = a.ask_now("k").unwrap();
        a.granted("k", &first, &ledger.lease(&first, 0.0), 0.0);
        a.add_spend("k", 0.02, 1.0);
        let background = a.ask("k").unwrap();
        assert!(a.ask("k").is_none(), "one background call at a time");
        assert!((background.spent_today_usd - 0.02).abs() < 1e-12);
        // A request that cannot wait asks too; the object counts the total once.
        a.add_spend("k", 0.5, 2.0);
        let now = a.ask_now("k").unwrap();
        assert!((now.spent_today_usd - 0.52).abs() < 1e-12);
        // The object answers the background call first, then the other; the answers cross.
        let older = ledger.lease(&background, 3.0);
        let newer = ledger.lease(&now, 4.0);
        assert!((newer.spent_today_usd - 0.52).abs() < 1e-12, "{newer:?}");
        a.granted("k", &now, &newer, 4.0);
        a.granted("k", &background, &older, 5.0);
        let held = a.held.borrow()["k"].clone();
        assert_eq!((held.seq, held.slice_usd), (newer.seq, newer.spend_usd));
        assert!((held.slice_base_usd - 0.52).abs() < 1e-12);
        assert!(matches!(a.admit(&k, 0.1, 5.0), Verdict::Admit { .. }));
        a.failed("k");
        let again = a.ask("k").unwrap();
        assert!(
            (again.spent_today_usd - 0.52).abs() < 1e-12,
            "reported again"
        );
    }
}
