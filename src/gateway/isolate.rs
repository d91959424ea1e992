//! What an isolate keeps between requests (`State`: the rules, key records, breakers, limits
//! and leases, shared health, cascade answers), and the work a request leaves for after its
//! answer (`Deferred`: calls to the Durable Objects no request waits for), which the shell runs
//! with `wait_until` through `run_deferred`.

use crate::access::auth::KeyCache;
use crate::access::lease::{self, Leases};
use crate::access::limits::Limits;
use crate::decide::cascade::CascadeCache;
use crate::dispatch::breaker::Breakers;
use crate::dispatch::health::{self, HealthReport, SharedHealth};
use crate::ports::{Clock, PortSet};
use crate::record::analytics::RequestRecord;
use crate::rules::cache::RulesCache;
use crate::settings::Settings;
use std::cell::Cell;

/// What lives in the isolate between requests.
pub struct State {
    pub rules: RulesCache,
    pub keys: KeyCache,
    pub breakers: Breakers,
    /// Limits counted in this isolate (no Durable Object bound, or one unreachable and open).
    pub limits: Limits,
    /// Limits leased from the keys' Durable Objects.
    pub leases: Leases,
    /// The targets' health shared across the edge, as this isolate last saw it.
    pub health: SharedHealth,
    /// The classifier cascade's answers by prompt hash.
    pub cascade: CascadeCache,
    /// Calls this isolate made to the Durable Objects (for `/healthz`).
    pub object_calls: Cell<u64>,
}

impl Default for State {
    fn default() -> Self {
        State::new("isolate".into())
    }
}

impl State {
    /// The state of a new isolate; `isolate` names it to the Durable Objects (unique per isolate).
    pub fn new(isolate: String) -> Self {
        State {
            rules: RulesCache::default(),
            keys: KeyCache::default(),
            breakers: Breakers::default(),
            limits: Limits::default(),
            leases: Leases::new(isolate),
            health: SharedHealth::default(),
            cascade: CascadeCache::default(),
            object_calls: Cell::new(0),
        }
    }

    pub(crate) fn count_object_calls(&self, calls: u32) {
        self.object_calls
            .set(self.object_calls.get() + u64::from(calls));
    }

    /// Settle the record of a streamed answer once its stream is over: `completed` is false when
    /// the stream was dropped before the watch could settle it (the client left). What it cost
    /// counts against the key's spend; the work to run after it (a lease renewal) comes back.
    pub fn settle_stream(
        &self,
        record: &mut RequestRecord,
        completed: bool,
        now_ms: f64,
    ) -> Vec<Deferred> {
        if !completed {
            record.abandon_stream();
        }
        self.add_spend(&record.key_id, record.cost_usd, now_ms)
    }

    /// What a request cost, against its key's day: counted here, and in the lease when the
    /// key's limits are shared (renewed in the background when enough is unreported).
    pub(crate) fn add_spend(&self, key_id: &str, cost_usd: f64, now_ms: f64) -> Vec<Deferred> {
        self.limits.add_spend(key_id, cost_usd, now_ms);
        match self.leases.add_spend(key_id, cost_usd, now_ms) {
            true => vec![Deferred::Lease {
                key_id: key_id.to_string(),
            }],
            false => Vec::new(),
        }
    }
}

/// Work for after the answer, which no request waits for: calls to the Durable Objects. The
/// shell runs it with `wait_until` (`run_deferred`).
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Renew a key's lease, carrying the spend not yet reported.
    Lease { key_id: String },
    /// Tell a target's object how a call went, or read its state.
    Health {
        target: String,
        report: HealthReport,
    },
}

/// Run the deferred work of a request (a failed call only leaves the isolate's copies as they
/// were: a later request tries again).
pub async fn run_deferred<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    work: Vec<Deferred>,
) {
    let (coordinator, clock) = (ports.coordinator(), ports.clock());
    let timeout = settings.object_timeout_ms;
    for item in work {
        match item {
            Deferred::Lease { key_id } => {
                if let Some(ask) = state.leases.ask(&key_id, clock.now_ms()) {
                    state.count_object_calls(1);
                    let leases = &state.leases;
                    let _ = lease::call(leases, coordinator, clock, &key_id, ask, timeout).await;
                }
            }
            Deferred::Health { target, report } => {
                state.count_object_calls(1);
                let shared = &state.health;
                let _ = health::call(shared, coordinator, clock, &target, report, timeout).await;
            }
        }
    }
}
