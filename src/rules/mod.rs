//! The rules document: what operators write (`raw`), how it is checked (`validate`, `targets`,
//! `json_strict`), and what the router reads at run time (`model`).

mod json_strict;
pub mod model;
pub mod raw;
mod targets;
mod validate;

pub use model::{
    Cascade, Cooldown, Defaults, FallbackOn, Model, Price, Provider, RetryPolicy, Route, Rules,
    Settings, Target, TaskModelConfig,
};
pub use raw::rules_schema;
pub use validate::{
    builtin_retry, parse_rules, summarize, RulesError, DEFAULT_RETRY_STATUSES, DEFAULT_TIMEOUT_MS,
    TOP_LEVEL_FIELDS,
};
