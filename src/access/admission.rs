//! Admitting a request under its key's request and spend limits: counted in this isolate when the
//! deployment has no Durable Object for them (`limits`); otherwise from the lease this isolate
//! holds (`lease`), waiting for the key's object only when nothing usable is held. An unreachable
//! object fails each limit open (counted in the isolate) or closed (refused), as the policy says,
//! and is not waited for again for a few seconds.
//! The decision is returned for the request's record.

use crate::access::auth::KeyRecord;
use crate::access::lease::{self, Leases, Verdict};
use crate::access::limits::{Exceeded, Limits};
use crate::error::{ApiError, ErrorCode};
use crate::ports::{Clock, Coordinator};

/// How a key's request and spend limits decided a request (the `limits` blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitDecision {
    /// Counted in this isolate alone: the deployment has no Durable Object for limits.
    Isolate,
    /// Admitted from the lease this isolate held.
    Lease,
    /// Admitted after waiting for the key's object to grant a lease.
    Renewed,
    /// Refused: a limit is reached.
    Limited,
    /// The object could not be reached and the limit fails open: counted in this isolate.
    UnreachableOpen,
    /// The object could not be reached and a limit fails closed: refused.
    UnreachableClosed,
}

impl LimitDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitDecision::Isolate => "isolate",
            LimitDecision::Lease => "lease",
            LimitDecision::Renewed => "renewed",
            LimitDecision::Limited => "limited",
            LimitDecision::UnreachableOpen => "unreachable_open",
            LimitDecision::UnreachableClosed => "unreachable_closed",
        }
    }
}

/// What the settings say about leases and an unreachable object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub lease_fraction: f64,
    /// Refuse when the object cannot be reached, for a key with a request limit.
    pub requests_closed: bool,
    /// The same for a key with a spend limit.
    pub spend_closed: bool,
    pub timeout_ms: u64,
}

/// The outcome, for the request and its record.
#[derive(Debug)]
pub struct Admission {
    /// `None` when the key has no limits.
    pub decision: Option<LimitDecision>,
    /// Calls made to the key's object while the request waited.
    pub object_calls: u32,
    /// Renew the lease in the background.
    pub renew: bool,
    pub result: Result<(), Exceeded>,
}

/// Where a key's limits are counted.
pub struct Counters<'a, C, K> {
    pub limits: &'a Limits,
    pub leases: &'a Leases,
    pub coordinator: &'a C,
    pub clock: &'a K,
}

pub async fn admit<C: Coordinator, K: Clock>(
    at: Counters<'_, C, K>,
    key: &KeyRecord,
    policy: Policy,
) -> Admission {
    let mut out = Admission {
        decision: None,
        object_calls: 0,
        renew: false,
        result: Ok(()),
    };
    if key.requests_per_minute.is_none() && key.spend_usd_per_day.is_none() {
        return out;
    }
    let clock = at.clock;
    if !at.coordinator.bound() {
        out.decision = Some(LimitDecision::Isolate);
        out.result = at.limits.admit(key, clock.now_ms());
        return out;
    }
    let mut decision = LimitDecision::Lease;
    for waited in [false, true] {
        match at.leases.admit(key, policy.lease_fraction, clock.now_ms()) {
            Verdict::Admit { renew } => {
                out.renew = renew;
                out.decision = Some(decision);
                return out;
            }
            Verdict::Refuse(e) => {
                out.decision = Some(LimitDecision::Limited);
                out.result = Err(e);
                return out;
            }
            Verdict::Unreachable => {
                let why = "it did not answer a moment ago";
                return unreachable(at.limits, key, policy, why, clock.now_ms(), out);
            }
            Verdict::Ask if waited => break,
            Verdict::Ask => {
                let Some(ask) = at.leases.ask_now(&key.id, clock.now_ms()) else {
                    break;
                };
                out.object_calls += 1;
                let answer = lease::call(
                    at.leases,
                    at.coordinator,
                    clock,
                    &key.id,
                    ask,
                    policy.timeout_ms,
                )
                .await;
                if let Err(e) = answer {
                    return unreachable(at.limits, key, policy, &e.0, clock.now_ms(), out);
                }
                decision = LimitDecision::Renewed;
            }
        }
    }
    // The object answered, but left nothing to admit with and no refusal to give.
    out.decision = Some(LimitDecision::Limited);
    out.result = Err(Exceeded {
        error: ApiError::new(
            ErrorCode::KeyLimitExceeded,
            "this key's limits leave nothing for this request now",
        ),
        retry_after_s: 1,
    });
    out
}

/// The key's object could not be reached: each limit the key has fails open or closed.
fn unreachable(
    limits: &Limits,
    key: &KeyRecord,
    policy: Policy,
    why: &str,
    now_ms: f64,
    mut out: Admission,
) -> Admission {
    let closed = (key.requests_per_minute.is_some() && policy.requests_closed)
        || (key.spend_usd_per_day.is_some() && policy.spend_closed);
    if closed {
        out.decision = Some(LimitDecision::UnreachableClosed);
        out.result = Err(Exceeded {
            error: ApiError::new(
                ErrorCode::LimitsUnavailable,
                format!("this key's limits cannot be checked now ({why}); try again shortly"),
            ),
            retry_after_s: 1,
        });
        return out;
    }
    out.decision = Some(LimitDecision::UnreachableOpen);
    out.result = limits.admit(key, now_ms);
    out
}
