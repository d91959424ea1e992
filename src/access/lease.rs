//! A gateway key's limits as this isolate holds them when they are shared across the edge: the
//! request tokens and the spend slice leased from the key's Durable Object (`ledger`), spent here
//! without a round trip, and renewed in the background when half gone. A request waits for the
//! object only when this isolate holds nothing usable for the key (its first request, or tokens
//! spent faster than a renewal could come back).
//!
//! Lease sizes are a fraction of the limit (`LEASE_FRACTION`, 0.1 by default): 10 % of
//! `requests_per_minute` (at least one request), 10 % of `spend_usd_per_day`.

use crate::access::auth::KeyRecord;
use crate::access::ledger::{Grant, LeaseAsk, DAY_MS, SLICE_TTL_MS};
use crate::access::limits::Exceeded;
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
    /// Request tokens held, by when they lapse (each grant's own), earliest first.
    tokens: Vec<(u32, f64)>,
    /// The slice held, the running total of spend the object knew when it granted it, the day
    /// it is for, and when the object releases it unless renewed.
    slice_usd: f64,
    slice_base_usd: f64,
    slice_day: f64,
    slice_until_ms: f64,
    /// The newest grant applied, as (the object's epoch, its number): older answers that arrive
    /// later do not replace its slice.
    newest: (f64, u64),
    /// What this isolate's answers for the key cost today, in all, and the day.
    spent_today_usd: f64,
    day: f64,
    /// The running total in the last report sent.
    reported_usd: f64,
    /// A background call is on its way.
    asking: bool,
    /// The object refused: not asked again before this time (for the limits as they were).
    refused_until_ms: f64,
    refusal: Option<(Refusal, Option<u32>, Option<f64>)>,
    /// The object could not be reached: not asked again before this time.
    unreachable_until_ms: f64,
}

impl Held {
    fn token_count(&self, now_ms: f64) -> u32 {
        self.tokens
            .iter()
            .filter(|(_, until)| *until > now_ms)
            .map(|(n, _)| n)
            .sum()
    }

    /// Spend one token, the one that lapses first.
    fn take_token(&mut self, now_ms: f64) {
        self.tokens.retain(|(n, until)| *n > 0 && *until > now_ms);
        if let Some(first) = self.tokens.first_mut() {
            first.0 -= 1;
        }
    }

    fn spend_left(&self, now_ms: f64) -> f64 {
        if now_ms >= self.slice_until_ms {
            // The object has released it.
            return 0.0;
        }
        self.slice_usd - (self.spent_today_usd - self.slice_base_usd)
    }

    /// The slice is half gone or half its time, or half a lease's worth is waiting to be
    /// reported.
    fn low_spend(&self, now_ms: f64) -> bool {
        self.spend_usd_per_day.is_some()
            && (self.spend_left(now_ms) <= self.slice_usd / 2.0
                || now_ms >= self.slice_until_ms - SLICE_TTL_MS / 2.0
                || self.spent_today_usd - self.reported_usd >= self.want_spend_usd / 2.0)
    }

    fn roll_day(&mut self, now_ms: f64) {
        let today = (now_ms / DAY_MS).floor();
        if self.day != today {
            self.day = today;
            self.spent_today_usd = 0.0;
            self.reported_usd = 0.0;
        }
        // A slice for a later day (the object's clock a little ahead at midnight) is kept.
        if self.slice_day < today {
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
    /// Nothing usable is held and the object could not be reached a moment ago: do what the
    /// limits do when it is unreachable, without waiting for it again.
    Unreachable,
    /// The object has refused the key for now.
    Refuse(Exceeded),
}

/// How long a refusal that is not for the rest of the minute or the day lasts (the others'
/// slices held the whole cap), and how long an unreachable object is not asked again.
const RETRY_SOON_MS: f64 = 5_000.0;

/// The leases of every key this isolate served.
#[derive(Debug)]
pub struct Leases {
    /// Who this isolate is to the objects; a new name when its holdings start over, so its
    /// running totals begin again without the objects mistaking them for old reports.
    isolate: RefCell<(String, u32)>,
    held: RefCell<HashMap<String, Held>>,
}

impl Leases {
    pub fn new(isolate: String) -> Self {
        Leases {
            isolate: RefCell::new((isolate, 0)),
            held: RefCell::new(HashMap::new()),
        }
    }

    /// Admit one request for `key` (which has limits) from what is held.
    pub fn admit(&self, key: &KeyRecord, fraction: f64, now_ms: f64) -> Verdict {
        let mut all = self.held.borrow_mut();
        if all.len() >= MAX_KEYS && !all.contains_key(&key.id) {
            all.clear();
            self.isolate.borrow_mut().1 += 1;
        }
        let h = all.entry(key.id.clone()).or_default();
        (h.want_requests, h.want_spend_usd) = lease_size(key, fraction);
        h.requests_per_minute = key.requests_per_minute;
        h.spend_usd_per_day = key.spend_usd_per_day;
        h.roll_day(now_ms);
        let needs_tokens = key.requests_per_minute.is_some() && h.token_count(now_ms) == 0;
        let needs_spend = key.spend_usd_per_day.is_some() && h.spend_left(now_ms) <= 0.0;
        if !h.granted || needs_tokens || needs_spend {
            if let (Some((refusal, rpm, cap)), true) = (h.refusal, now_ms < h.refused_until_ms) {
                // A refusal stands for the limits it was given for; a changed limit asks again.
                let same = rpm == key.requests_per_minute && cap == key.spend_usd_per_day;
                let still = match refusal {
                    Refusal::Requests => needs_tokens,
                    Refusal::Spend => needs_spend,
                };
                if same && still {
                    return Verdict::Refuse(exceeded(key, refusal, h.refused_until_ms, now_ms));
                }
            }
            if now_ms < h.unreachable_until_ms {
                return Verdict::Unreachable;
            }
            return Verdict::Ask;
        }
        if key.requests_per_minute.is_some() {
            h.take_token(now_ms);
        }
        let low_tokens =
            key.requests_per_minute.is_some() && h.token_count(now_ms) <= h.want_requests / 2;
        Verdict::Admit {
            renew: !h.asking && (low_tokens || h.low_spend(now_ms)),
        }
    }

    /// The background call to make to the key's object; `None` when one is already on its way,
    /// the object could not be reached a moment ago, or the key was never admitted here.
    pub fn ask(&self, key_id: &str, now_ms: f64) -> Option<LeaseAsk> {
        let mut all = self.held.borrow_mut();
        let h = all.get_mut(key_id)?;
        if h.asking || now_ms < h.unreachable_until_ms {
            return None;
        }
        h.asking = true;
        Some(self.lease_ask(h, now_ms))
    }

    /// The call a request waits for when nothing usable is held (made even while a background
    /// call is on its way: reports are running totals, so the object counts them once).
    pub fn ask_now(&self, key_id: &str, now_ms: f64) -> Option<LeaseAsk> {
        let mut all = self.held.borrow_mut();
        let h = all.get_mut(key_id)?;
        Some(self.lease_ask(h, now_ms))
    }

    fn lease_ask(&self, h: &mut Held, now_ms: f64) -> LeaseAsk {
        h.reported_usd = h.spent_today_usd;
        let (name, generation) = self.isolate.borrow().clone();
        // Top the tokens up to one lease, rather than add a lease to what is held.
        let held = h.token_count(now_ms);
        LeaseAsk {
            isolate: format!("{name}.{generation}"),
            requests_per_minute: h.requests_per_minute,
            spend_usd_per_day: h.spend_usd_per_day,
            want_requests: h.want_requests.saturating_sub(held).max(1),
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
        h.unreachable_until_ms = 0.0;
        if grant.requests > 0 {
            h.tokens.push((grant.requests, grant.requests_until_ms));
            h.tokens.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
        // A new epoch is a new ledger (the object's state started over): its numbers restart.
        let this = (grant.epoch, grant.seq);
        if grant.epoch != h.newest.0 || grant.seq > h.newest.1 {
            h.newest = this;
            h.slice_usd = grant.spend_usd;
            h.slice_day = grant.day;
            h.slice_until_ms = now_ms + SLICE_TTL_MS;
            h.slice_base_usd = if ask.day == grant.day {
                ask.spent_today_usd
            } else {
                0.0
            };
        }
        h.roll_day(now_ms);
        h.refusal = None;
        let out_of_tokens = h.requests_per_minute.is_some() && h.token_count(now_ms) == 0;
        let out_of_spend = h.spend_usd_per_day.is_some() && h.spend_left(now_ms) <= 0.0;
        let limits = (h.requests_per_minute, h.spend_usd_per_day);
        if out_of_spend {
            // Until the day turns only when the day's spend reached the cap; otherwise the other
            // isolates' slices hold what is left: ask again soon.
            let spent = grant.spent_today_usd >= h.spend_usd_per_day.unwrap_or(0.0);
            h.refusal = Some((Refusal::Spend, limits.0, limits.1));
            h.refused_until_ms = match spent {
                true => grant.day_ends_ms,
                false => now_ms + RETRY_SOON_MS,
            };
        } else if out_of_tokens {
            h.refusal = Some((Refusal::Requests, limits.0, limits.1));
            h.refused_until_ms = grant.minute_ends_ms;
        }
    }

    /// A call failed: a later one carries the running total again; requests that find nothing
    /// held do not wait for the object again for a few seconds.
    pub fn failed(&self, key_id: &str, now_ms: f64) {
        if let Some(h) = self.held.borrow_mut().get_mut(key_id) {
            h.asking = false;
            h.reported_usd = 0.0;
            h.unreachable_until_ms = now_ms + RETRY_SOON_MS;
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
        !h.asking && h.low_spend(now_ms)
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
            leases.failed(key_id, clock.now_ms());
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
    let cap = key.spend_usd_per_day.unwrap_or(0.0);
    match refusal {
        Refusal::Requests => {
            Exceeded::requests(key.requests_per_minute.unwrap_or(0), until_ms, now_ms)
        }
        Refusal::Spend if until_ms - now_ms > RETRY_SOON_MS => {
            Exceeded::spend(cap, until_ms, now_ms)
        }
        Refusal::Spend => Exceeded::new(
            format!("this key has nearly spent its ${cap} for today (UTC): what is left is held for requests elsewhere; try again shortly"),
            until_ms,
            now_ms,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ledger::{KeyLedger, MINUTE_MS};
    use crate::error::ErrorCode;

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
                        let ask = leases.ask(&k.id, now).unwrap();
                        calls += 1;
                        let grant = ledger.lease(&ask, now);
                        leases.granted(&k.id, &ask, &grant, now);
                    }
                    return (true, calls);
                }
                Verdict::Refuse(_) | Verdict::Unreachable => return (false, calls),
                Verdict::Ask => {
                    if calls > 0 {
                        return (false, calls);
                    }
                    let ask = leases.ask_now(&k.id, now).unwrap();
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
        // Leases of 10, topped up when half gone: each call after the first brings at least five
        // tokens (plus the calls that find the minute used up).
        assert!(calls <= 2 + 100 / 5 + 8, "{calls} calls");
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
                let ask = a.ask(&k.id, now).unwrap();
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
        let first = a.ask_now("k", 0.0).unwrap();
        a.granted("k", &first, &ledger.lease(&first, 0.0), 0.0);
        a.add_spend("k", 0.02, 1.0);
        let background = a.ask("k", 1.0).unwrap();
        assert!(a.ask("k", 1.0).is_none(), "one background call at a time");
        assert!((background.spent_today_usd - 0.02).abs() < 1e-12);
        // A request that cannot wait asks too; the object counts the total once.
        a.add_spend("k", 0.5, 2.0);
        let now = a.ask_now("k", 2.0).unwrap();
        assert!((now.spent_today_usd - 0.52).abs() < 1e-12);
        // The object answers the background call first, then the other; the answers cross.
        let older = ledger.lease(&background, 3.0);
        let newer = ledger.lease(&now, 4.0);
        assert!((newer.spent_today_usd - 0.52).abs() < 1e-12, "{newer:?}");
        a.granted("k", &now, &newer, 4.0);
        a.granted("k", &background, &older, 5.0);
        let held = a.held.borrow()["k"].clone();
        assert_eq!(
            (held.newest, held.slice_usd),
            ((newer.epoch, newer.seq), newer.spend_usd)
        );
        assert!((held.slice_base_usd - 0.52).abs() < 1e-12);
        assert!(matches!(a.admit(&k, 0.1, 5.0), Verdict::Admit { .. }));
        a.failed("k", 6.0);
        // An unreachable object is not asked again at once; a few seconds later the running
        // total goes with the next call.
        assert!(a.ask("k", 7.0).is_none());
        let again = a.ask("k", 6.0 + RETRY_SOON_MS).unwrap();
        assert!(
            (again.spent_today_usd - 0.52).abs() < 1e-12,
            "reported again"
        );
    }

    #[test]
    fn slices_held_elsewhere_refuse_briefly_and_the_day_only_when_spent() {
        // Ten isolates each hold a tenth of the cap: the eleventh gets nothing, but the day's
        // spend is not reached, so it is asked again in seconds, not at midnight.
        let k = key(None, Some(10.0));
        let mut ledger = KeyLedger::default();
        for i in 0..10 {
            let l = Leases::new(format!("i{i}"));
            assert!(serve(&l, &mut ledger, &k, 1.0).0);
        }
        let late = Leases::new("late".into());
        assert!(!serve(&late, &mut ledger, &k, 2.0).0);
        match late.admit(&k, 0.1, 3.0) {
            Verdict::Refuse(e) => {
                assert!(e.retry_after_s <= 5, "{}", e.retry_after_s);
                assert!(
                    e.error.message.contains("nearly spent"),
                    "{}",
                    e.error.message
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(late.admit(&k, 0.1, 6_000.0), Verdict::Ask));
        // A raised cap asks again at once.
        let raised = key(None, Some(20.0));
        assert!(matches!(late.admit(&raised, 0.1, 4.0), Verdict::Ask));
    }

    #[test]
    fn a_slice_lapses_when_the_object_would_release_it_and_renews_before() {
        let k = key(None, Some(10.0));
        let mut ledger = KeyLedger::default();
        let a = Leases::new("a".into());
        assert!(serve(&a, &mut ledger, &k, 0.0).0);
        // Half its time gone: a renewal is asked for, though nothing was spent.
        match a.admit(&k, 0.1, SLICE_TTL_MS / 2.0 + 1.0) {
            Verdict::Admit { renew } => assert!(renew),
            other => panic!("{other:?}"),
        }
        // Past its time the slice is empty here too.
        assert!(matches!(a.admit(&k, 0.1, SLICE_TTL_MS + 1.0), Verdict::Ask));
    }

    #[test]
    fn tokens_keep_their_own_lapse_and_renewals_top_up_to_one_lease() {
        let k = key(Some(100), None);
        let mut ledger = KeyLedger::default();
        let a = Leases::new("a".into());
        // Granted late in minute 1: good until the end of minute 2.
        let t = MINUTE_MS + 59_000.0;
        assert!(matches!(a.admit(&k, 0.1, t), Verdict::Ask));
        let ask = a.ask_now("k", t).unwrap();
        assert_eq!(ask.want_requests, 10);
        a.granted("k", &ask, &ledger.lease(&ask, t), t);
        for _ in 0..6 {
            assert!(matches!(a.admit(&k, 0.1, t), Verdict::Admit { .. }));
        }
        // Four held: a renewal asks for six more, not ten.
        let renew = a.ask("k", t).unwrap();
        assert_eq!(renew.want_requests, 6);
        // Granted in minute 2, good until the end of minute 3; the older four still lapse at
        // the end of minute 2.
        let t2 = 2.0 * MINUTE_MS + 1_000.0;
        a.granted("k", &renew, &ledger.lease(&renew, t2), t2);
        let end_of_2 = 3.0 * MINUTE_MS;
        assert_eq!(a.held.borrow()["k"].token_count(end_of_2 - 1.0), 10);
        assert_eq!(a.held.borrow()["k"].token_count(end_of_2 + 1.0), 6);
    }
}
