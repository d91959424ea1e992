//! Target health shared across the edge: what one Durable Object per target holds (`HealthLedger`,
//! a pure state machine the shell's object class loads, calls and stores), and this isolate's
//! short-lived copy of it (`SharedHealth`). Isolates report transient failures to the object in
//! the background, after the answer; when a target has failed `after_failures` times in a row
//! (across all isolates) the object marks it down for `cooldown_ms`. An isolate reads a target's
//! state from its copy, refreshed in the background once it is older than the TTL
//! (`HEALTH_TTL_SECONDS`), so a target found down by one isolate is skipped by the others within
//! the TTL plus one request. The per-isolate breaker (`breaker`) keeps working beside it.

use crate::ports::{call_json, serve_json, Clock, Coordinator, SharedObject, StoreError};
use crate::rules::Cooldown;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// Targets tracked per isolate at most; past this the copy starts over.
const MAX_TRACKED: usize = 4096;

/// What an isolate tells a target's object (or only asks, with `outcome` absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    /// `Some(true)`: a transient failure; `Some(false)`: a success after failures.
    pub failed: Option<bool>,
    pub after_failures: u32,
    pub cooldown_ms: u64,
}

/// What the object says of a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// Skip the target until then (ms since the epoch; 0: it is up).
    pub down_until_ms: f64,
    /// Transient failures in a row, across isolates.
    pub failures: u32,
}

/// One target's shared state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthLedger {
    failures: u32,
    down_until_ms: f64,
}

impl HealthLedger {
    pub fn report(&mut self, report: &HealthReport, now_ms: f64) -> HealthView {
        match report.failed {
            Some(true) if report.after_failures > 0 => {
                self.failures += 1;
                if self.failures >= report.after_failures {
                    self.down_until_ms = now_ms + report.cooldown_ms as f64;
                    self.failures = 0;
                }
            }
            Some(false) => {
                self.failures = 0;
                self.down_until_ms = 0.0;
            }
            Some(true) | None => {}
        }
        HealthView {
            down_until_ms: self.down_until_ms,
            failures: self.failures,
        }
    }
}

/// The object's whole exchange, for the shell (as `access::ledger::serve`).
pub fn serve(stored: Option<&str>, body: &str, now_ms: f64) -> Result<(String, String), String> {
    serve_json(
        stored,
        body,
        "a health report",
        |ledger: &mut HealthLedger, report| ledger.report(report, now_ms),
    )
}

#[derive(Debug, Clone, Copy, Default)]
struct Known {
    view: HealthView,
    /// When the object last answered (`None`: never).
    fetched_ms: Option<f64>,
    asking: bool,
    /// This isolate reported a failure the object has not seen a success after.
    reported_failure: bool,
}

/// This isolate's copy of the targets' shared state.
#[derive(Debug, Default)]
pub struct SharedHealth {
    copies: RefCell<HashMap<String, Known>>,
}

impl SharedHealth {
    /// Whether the object said the target is down (as of the copy).
    pub fn is_down(&self, target: &str, now_ms: f64) -> bool {
        self.copies
            .borrow()
            .get(target)
            .is_some_and(|c| now_ms < c.view.down_until_ms)
    }

    /// The report to send in the background for a call's outcome, if any: every transient
    /// failure, a success only after this isolate reported a failure, and otherwise a plain read
    /// when the copy is older than `ttl_ms` (one call on its way per target at most).
    pub fn after_call(
        &self,
        target: &str,
        transient_failure: Option<bool>,
        policy: Cooldown,
        ttl_ms: f64,
        now_ms: f64,
    ) -> Option<HealthReport> {
        if policy.after_failures == 0 {
            return None;
        }
        let mut copies = self.copies.borrow_mut();
        if copies.len() >= MAX_TRACKED && !copies.contains_key(target) {
            copies.clear();
        }
        let c = copies.entry(target.to_string()).or_default();
        let failed = match transient_failure {
            Some(true) => {
                c.reported_failure = true;
                Some(true)
            }
            Some(false) if c.reported_failure => {
                c.reported_failure = false;
                Some(false)
            }
            Some(false) | None => None,
        };
        let stale = c.fetched_ms.is_none_or(|at| now_ms - at >= ttl_ms);
        if failed.is_none() && (c.asking || !stale) {
            return None;
        }
        c.asking = true;
        Some(HealthReport {
            failed,
            after_failures: policy.after_failures,
            cooldown_ms: policy.cooldown_ms,
        })
    }

    /// The object's answer.
    pub fn seen(&self, target: &str, view: HealthView, now_ms: f64) {
        if let Some(c) = self.copies.borrow_mut().get_mut(target) {
            c.view = view;
            c.fetched_ms = Some(now_ms);
            c.asking = false;
        }
    }

    /// The call failed: the copy stays as it was, and may be asked for again.
    pub fn unseen(&self, target: &str) {
        if let Some(c) = self.copies.borrow_mut().get_mut(target) {
            c.asking = false;
        }
    }
}

/// Send `report` to the target's object and keep its answer in `health`.
pub async fn call(
    health: &SharedHealth,
    coordinator: &impl Coordinator,
    clock: &impl Clock,
    target: &str,
    report: HealthReport,
    timeout_ms: u64,
) -> Result<(), StoreError> {
    let object = SharedObject::TargetHealth;
    match call_json::<_, HealthView>(coordinator, object, target, &report, timeout_ms).await {
        Ok(view) => {
            health.seen(target, view, clock.now_ms());
            Ok(())
        }
        Err(e) => {
            health.unseen(target);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Cooldown = Cooldown {
        after_failures: 2,
        cooldown_ms: 1000,
    };

    #[test]
    fn failures_from_two_isolates_put_a_target_down_for_both() {
        let mut object = HealthLedger::default();
        let (a, b) = (SharedHealth::default(), SharedHealth::default());
        // `a` fails twice; each failure goes to the object.
        for t in [10.0, 20.0] {
            let report = a.after_call("p/m", Some(true), P, 5000.0, t).unwrap();
            a.seen("p/m", object.report(&report, t), t);
        }
        assert!(a.is_down("p/m", 30.0));
        // `b` knows nothing until its copy is refreshed, which its next call asks for.
        assert!(!b.is_down("p/m", 30.0));
        let read = b.after_call("p/m", None, P, 5000.0, 30.0).unwrap();
        assert_eq!(read.failed, None);
        assert!(
            b.after_call("p/m", None, P, 5000.0, 31.0).is_none(),
            "one read at a time"
        );
        b.seen("p/m", object.report(&read, 32.0), 32.0);
        assert!(b.is_down("p/m", 40.0));
        assert!(!b.is_down("p/m", 1020.0 + 1.0), "the cooldown ends");
        // Fresh copies are not read again before the TTL.
        assert!(b.after_call("p/m", Some(false), P, 5000.0, 50.0).is_none());
        assert!(b.after_call("p/m", None, P, 5000.0, 5032.0).is_some());
        // A success after a reported failure is reported, and brings the target up.
        a.after_call("p/m", Some(true), P, 5000.0, 60.0);
        let up = a.after_call("p/m", Some(false), P, 5000.0, 70.0).unwrap();
        assert_eq!(up.failed, Some(false));
        assert_eq!(object.report(&up, 70.0).down_until_ms, 0.0);
        // No breaker, no reports.
        let off = Cooldown {
            after_failures: 0,
            cooldown_ms: 0,
        };
        assert!(a.after_call("p/m", Some(true), off, 0.0, 80.0).is_none());
    }

    #[test]
    fn the_exchange_refuses_other_bodies() {
        let (state, reply) = serve(
            None,
            r#"{"failed":true,"after_failures":1,"cooldown_ms":50}"#,
            1.0,
        )
        .unwrap();
        let view: HealthView = serde_json::from_str(&reply).unwrap();
        assert_eq!(view.down_until_ms, 51.0);
        let (_, reply) = serve(
            Some(&state),
            r#"{"after_failures":1,"cooldown_ms":50}"#,
            2.0,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<HealthView>(&reply)
                .unwrap()
                .down_until_ms,
            51.0
        );
        assert!(serve(None, "[]", 0.0)
            .unwrap_err()
            .starts_with("not a health report"));
    }
}
