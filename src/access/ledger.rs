//! The shared side of a gateway key's limits: what one Durable Object holds for one key, as a
//! pure state machine the shell's object class only loads, calls and stores. Isolates lease slices
//! of the key's allowance from it (docs/operations.md#limits-across-the-edge):
//!
//! - **requests**: the object grants request tokens from the current minute's `requests_per_minute`
//!   and never grants more than that in one minute. A token is good until the end of the minute
//!   after the one it was granted in, so tokens left over from one minute can be spent in the next
//!   (at most what the isolates hold then: about one lease each; never more than the limit).
//! - **spend**: each isolate reports what it has spent on the key today, as a running total (so a
//!   report may arrive twice, late or out of order without being counted twice), and gets a slice
//!   of what is left of `spend_usd_per_day` (its previous slice replaced by the new one); the
//!   spend reported and the slices held never add up to more than the cap. An isolate serves
//!   while its slice lasts, and the answers it has admitted but not yet costed can take it past
//!   its slice: a day's spend exceeds the cap by at most what the isolates have in flight when
//!   their slices run out. A slice not renewed for `SLICE_TTL_MS` (its isolate is gone) is
//!   released; what its isolate reported stays counted.

use crate::ports::serve_json;
use serde::{Deserialize, Serialize};

pub const MINUTE_MS: f64 = 60_000.0;
pub const DAY_MS: f64 = 86_400_000.0;
/// How long an isolate's spend slice is kept for it without a renewal.
pub const SLICE_TTL_MS: f64 = 10.0 * MINUTE_MS;
/// Isolates remembered per key and day at most (past this the quietest is forgotten).
const MAX_ISOLATES: usize = 1024;

/// What an isolate asks for (and reports) in one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseAsk {
    /// The asking isolate (random, made once per isolate).
    pub isolate: String,
    /// The key's limits, as its record says now.
    pub requests_per_minute: Option<u32>,
    pub spend_usd_per_day: Option<f64>,
    /// Request tokens wanted.
    pub want_requests: u32,
    /// The spend slice wanted.
    pub want_spend_usd: f64,
    /// What this isolate's answers for the key cost today (UTC), in all.
    pub spent_today_usd: f64,
    /// The day (days since the epoch) that total is for.
    pub day: f64,
}

/// What the object grants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Request tokens (0 when the minute's allowance is used up, or the key has no such limit).
    pub requests: u32,
    /// When the tokens lapse (the end of the next minute).
    pub requests_until_ms: f64,
    /// The isolate's spend slice (it replaces the previous one).
    pub spend_usd: f64,
    /// The UTC day (days since the epoch) the slice belongs to.
    pub day: f64,
    /// When the minute and the day turn (ms since the epoch): a refusal lasts until then.
    pub minute_ends_ms: f64,
    pub day_ends_ms: f64,
    /// The key's spend today, as the object counts it (reported, not counting slices).
    pub spent_today_usd: f64,
    /// Grants numbered in order, so an isolate keeps the newest slice when answers cross; the
    /// numbers restart with the ledger, which `epoch` (when it began) tells apart.
    pub seq: u64,
    pub epoch: f64,
}

/// What the object knows of one isolate today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Isolate {
    id: String,
    /// Its running total of spend today, as last reported.
    reported_usd: f64,
    /// The slice it holds.
    slice_usd: f64,
    /// When it last called.
    at_ms: f64,
}

/// One key's shared counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyLedger {
    minute: f64,
    /// Request tokens granted in `minute`.
    granted: u64,
    day: f64,
    isolates: Vec<Isolate>,
    /// Spend reported today by isolates the ledger no longer tracks one by one.
    forgotten_usd: f64,
    seq: u64,
    epoch: f64,
}

impl KeyLedger {
    /// Take an isolate's report, then grant what it asks within what is left.
    pub fn lease(&mut self, ask: &LeaseAsk, now_ms: f64) -> Grant {
        let (minute, day) = ((now_ms / MINUTE_MS).floor(), (now_ms / DAY_MS).floor());
        if self.minute != minute {
            self.minute = minute;
            self.granted = 0;
        }
        if self.day != day {
            self.day = day;
            self.isolates.clear();
            self.forgotten_usd = 0.0;
        }
        if self.epoch == 0.0 {
            self.epoch = now_ms;
        }
        self.seq += 1;
        // Slices of isolates gone quiet are released (their spend stays counted).
        for other in &mut self.isolates {
            if now_ms - other.at_ms >= SLICE_TTL_MS {
                other.slice_usd = 0.0;
            }
        }
        let index = match self.isolates.iter().position(|i| i.id == ask.isolate) {
            Some(i) => i,
            None => {
                if self.isolates.len() >= MAX_ISOLATES {
                    self.forget_quietest();
                }
                self.isolates.push(Isolate {
                    id: ask.isolate.clone(),
                    reported_usd: 0.0,
                    slice_usd: 0.0,
                    at_ms: now_ms,
                });
                self.isolates.len() - 1
            }
        };
        let me = &mut self.isolates[index];
        me.at_ms = now_ms;
        me.slice_usd = 0.0;
        if ask.day == day && ask.spent_today_usd.is_finite() {
            me.reported_usd = me.reported_usd.max(ask.spent_today_usd);
        }
        let requests = match ask.requests_per_minute {
            Some(max) => {
                let left = u64::from(max).saturating_sub(self.granted);
                let n = left.min(u64::from(ask.want_requests));
                self.granted += n;
                n as u32
            }
            None => 0,
        };
        let spent: f64 =
            self.forgotten_usd + self.isolates.iter().map(|i| i.reported_usd).sum::<f64>();
        let held: f64 = self.isolates.iter().map(|i| i.slice_usd).sum();
        let spend_usd = match ask.spend_usd_per_day {
            Some(cap) => {
                let usd = (cap - spent - held)
                    .max(0.0)
                    .min(ask.want_spend_usd.max(0.0));
                self.isolates[index].slice_usd = usd;
                usd
            }
            None => 0.0,
        };
        Grant {
            requests,
            requests_until_ms: (minute + 2.0) * MINUTE_MS,
            spend_usd,
            day,
            minute_ends_ms: (minute + 1.0) * MINUTE_MS,
            day_ends_ms: (day + 1.0) * DAY_MS,
            spent_today_usd: spent,
            seq: self.seq,
            epoch: self.epoch,
        }
    }

    /// Forget the isolate that called longest ago, keeping its spend in the day's count. If it
    /// calls again, its running total counts again in full: counted twice, never lost.
    fn forget_quietest(&mut self) {
        let Some((i, _)) = self
            .isolates
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.at_ms.total_cmp(&b.1.at_ms))
        else {
            return;
        };
        let gone = self.isolates.swap_remove(i);
        self.forgotten_usd += gone.reported_usd;
    }
}

/// The object's whole exchange, for the shell: its stored state (JSON, or nothing yet) and a
/// request body in; the state to store and the response body out. A body that is not a
/// `LeaseAsk` is an error message, and the state is left as it was.
pub fn serve(stored: Option<&str>, body: &str, now_ms: f64) -> Result<(String, String), String> {
    serve_json(
        stored,
        body,
        "a lease request",
        |ledger: &mut KeyLedger, ask| ledger.lease(ask, now_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(isolate: &str, rpm: Option<u32>, cap: Option<f64>, want: (u32, f64)) -> LeaseAsk {
        LeaseAsk {
            isolate: isolate.into(),
            requests_per_minute: rpm,
            spend_usd_per_day: cap,
            want_requests: want.0,
            want_spend_usd: want.1,
            spent_today_usd: 0.0,
            day: 0.0,
        }
    }

    #[test]
    fn a_minute_never_grants_more_requests_than_the_limit() {
        let mut l = KeyLedger::default();
        let t = 10.0 * MINUTE_MS + 5_000.0;
        let a = l.lease(&ask("a", Some(10), None, (4, 0.0)), t);
        let b = l.lease(&ask("b", Some(10), None, (4, 0.0)), t + 1.0);
        let c = l.lease(&ask("c", Some(10), None, (4, 0.0)), t + 2.0);
        let d = l.lease(&ask("a", Some(10), None, (4, 0.0)), t + 3.0);
        assert_eq!(
            (a.requests, b.requests, c.requests, d.requests),
            (4, 4, 2, 0)
        );
        assert_eq!(d.minute_ends_ms, 11.0 * MINUTE_MS);
        assert_eq!(a.requests_until_ms, 12.0 * MINUTE_MS);
        // A new minute, a new allowance.
        let e = l.lease(&ask("a", Some(10), None, (4, 0.0)), 11.0 * MINUTE_MS);
        assert_eq!(e.requests, 4);
    }

    #[test]
    fn spend_slices_and_reports_never_pass_the_cap() {
        let mut l = KeyLedger::default();
        let cap = Some(1.0);
        let a = l.lease(&ask("a", None, cap, (0, 0.4)), 0.0);
        let b = l.lease(&ask("b", None, cap, (0, 0.4)), 1.0);
        let c = l.lease(&ask("c", None, cap, (0, 0.4)), 2.0);
        assert_eq!((a.spend_usd, b.spend_usd), (0.4, 0.4));
        assert!((c.spend_usd - 0.2).abs() < 1e-9);
        // `a` spent 0.3 of its slice and asks again: its old slice is released, the report counts.
        let mut again = ask("a", None, cap, (0, 0.4));
        again.spent_today_usd = 0.3;
        let a2 = l.lease(&again, 3.0);
        assert!((a2.spend_usd - 0.1).abs() < 1e-9, "{a2:?}");
        assert!((a2.spent_today_usd - 0.3).abs() < 1e-9);
        // The same total again (a report that crossed another) is not counted twice.
        let a3 = l.lease(&again, 4.0);
        assert!((a3.spent_today_usd - 0.3).abs() < 1e-9);
        assert!(a3.seq > a2.seq);
        // A quiet isolate's slice is released after the TTL.
        let late = l.lease(&ask("d", None, cap, (0, 0.4)), SLICE_TTL_MS + 10.0);
        assert!((late.spend_usd - 0.4).abs() < 1e-9, "{late:?}");
        // The next day starts from nothing.
        let next = l.lease(&ask("a", None, cap, (0, 0.4)), DAY_MS + 1.0);
        assert_eq!(
            (next.spend_usd, next.spent_today_usd, next.day),
            (0.4, 0.0, 1.0)
        );
    }

    #[test]
    fn the_exchange_keeps_state_as_json_and_refuses_other_bodies() {
        let body = serde_json::to_string(&ask("a", Some(3), None, (2, 0.0))).unwrap();
        let (state, reply) = serve(None, &body, 0.0).unwrap();
        let grant: Grant = serde_json::from_str(&reply).unwrap();
        assert_eq!(grant.requests, 2);
        let (_, reply) = serve(Some(&state), &body, 1.0).unwrap();
        let grant: Grant = serde_json::from_str(&reply).unwrap();
        assert_eq!(grant.requests, 1);
        assert!(serve(Some(&state), "{\"isolate\": 1}", 2.0)
            .unwrap_err()
            .starts_with("not a lease request"));
        assert!(serve(None, r#"{"isolate":"a","extra":1}"#, 2.0).is_err());
    }
}
