//! Cooldown for targets that keep failing, within one isolate: after `after_failures` transient
//! failures in a row a target is skipped for `cooldown_ms`; then one request probes it (half-open):
//! success closes the breaker, failure opens it again. Across isolates, `health` shares failures
//! through the targets' Durable Objects.

use crate::rules::Cooldown;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Closed,
    /// The cooldown is over: this request may probe the target.
    Probe,
    /// Skip the target.
    Open,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    open_until_ms: f64,
    probing: bool,
}

#[derive(Default)]
pub struct Breakers {
    entries: RefCell<HashMap<String, Entry>>,
}

/// Targets tracked per isolate at most; past this the oldest knowledge is dropped wholesale.
const MAX_TRACKED: usize = 4096;

impl Breakers {
    pub fn gate(&self, key: &str, policy: Cooldown, now_ms: f64) -> Gate {
        if policy.after_failures == 0 {
            return Gate::Closed;
        }
        let mut entries = self.entries.borrow_mut();
        let Some(e) = entries.get_mut(key) else {
            return Gate::Closed;
        };
        if e.failures < policy.after_failures {
            return Gate::Closed;
        }
        if now_ms < e.open_until_ms || e.probing {
            return Gate::Open;
        }
        e.probing = true;
        Gate::Probe
    }

    /// Record the outcome of a call; only transient failures count against a target.
    pub fn record(&self, key: &str, policy: Cooldown, transient_failure: bool, now_ms: f64) {
        if policy.after_failures == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if !transient_failure {
            entries.remove(key);
            return;
        }
        if entries.len() >= MAX_TRACKED && !entries.contains_key(key) {
            entries.clear();
        }
        let e = entries.entry(key.to_string()).or_default();
        e.failures += 1;
        e.probing = false;
        if e.failures >= policy.after_failures {
            e.open_until_ms = now_ms + policy.cooldown_ms as f64;
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
    fn opens_probes_and_closes() {
        let b = Breakers::default();
        assert_eq!(b.gate("t", P, 0.0), Gate::Closed);
        b.record("t", P, true, 0.0);
        assert_eq!(
            b.gate("t", P, 1.0),
            Gate::Closed,
            "one failure is not enough"
        );
        b.record("t", P, true, 10.0);
        assert_eq!(b.gate("t", P, 500.0), Gate::Open);
        assert_eq!(b.gate("u", P, 500.0), Gate::Closed, "per target");
        assert_eq!(b.gate("t", P, 1010.0), Gate::Probe);
        assert_eq!(b.gate("t", P, 1011.0), Gate::Open, "one probe at a time");
        b.record("t", P, true, 1020.0);
        assert_eq!(
            b.gate("t", P, 1500.0),
            Gate::Open,
            "a failed probe opens it again"
        );
        assert_eq!(b.gate("t", P, 2030.0), Gate::Probe);
        b.record("t", P, false, 2040.0);
        assert_eq!(
            b.gate("t", P, 2050.0),
            Gate::Closed,
            "a good probe closes it"
        );
    }

    #[test]
    fn non_transient_failures_and_disabled_policy() {
        let b = Breakers::default();
        b.record("t", P, true, 0.0);
        b.record("t", P, false, 0.0);
        b.record("t", P, true, 0.0);
        assert_eq!(
            b.gate("t", P, 1.0),
            Gate::Closed,
            "a success in between resets the count"
        );
        let off = Cooldown {
            after_failures: 0,
            cooldown_ms: 0,
        };
        for _ in 0..10 {
            b.record("x", off, true, 0.0);
        }
        assert_eq!(b.gate("x", off, 1.0), Gate::Closed);
    }
}
