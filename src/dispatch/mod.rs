//! Carrying out an attempt plan: one provider call (`attempt`), what to do after a failure
//! (`retry`: retry, move on or give up), targets cooling down in this isolate (`breaker`) and
//! across the edge (`health`), and the loop over the plan with its skips and its structured
//! attempt results (`fallback`); and the one call the classifier cascade makes (`cascade`).

pub mod attempt;
pub mod breaker;
pub mod cascade;
pub mod fallback;
pub mod health;
pub mod retry;
