//! Deadlines for waits on the runtime: a `Timer` fires at an absolute time (`Date.now()`), and
//! `within` waits for a future until a deadline, reusing the caller's timer when it fires no later
//! than needed. One that fires early (the deadline has moved on since, as an idle deadline does
//! with each chunk) is re-armed for the rest, so a stream costs a timer per idle period rather
//! than one per chunk.

use futures_util::future::{select, Either};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use worker::Delay;

pub struct Timer {
    /// When it fires, in ms since the epoch.
    at: f64,
    delay: Pin<Box<Delay>>,
}

fn now() -> f64 {
    js_sys::Date::now()
}

impl Timer {
    fn new(at: f64) -> Timer {
        let ms = (at - now()).max(0.0).ceil() as u64;
        Timer {
            at,
            delay: Box::pin(Delay::from(Duration::from_millis(ms))),
        }
    }
}

/// `op`'s output, or `None` when `timeout_ms` pass first. `slot` keeps the timer for the next wait.
pub async fn within<F: Future + Unpin>(
    slot: &mut Option<Timer>,
    mut op: F,
    timeout_ms: u64,
) -> Option<F::Output> {
    let deadline = now() + timeout_ms as f64;
    loop {
        // A timer firing after the deadline is replaced (1 ms of slack: callers pass whole
        // milliseconds of what remains of the same deadline); one firing before it is kept.
        let timer = match slot {
            Some(t) if t.at <= deadline + 1.0 => t,
            _ => slot.insert(Timer::new(deadline)),
        };
        let rest = match select(op, timer.delay.as_mut()).await {
            Either::Left((out, _)) => return Some(out),
            Either::Right(((), rest)) => rest,
        };
        *slot = None;
        if now() >= deadline - 1.0 {
            return None;
        }
        op = rest;
    }
}
