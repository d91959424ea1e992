//! The rules document: what operators write (`raw`), how it is checked (`validate`, `targets`,
//! `json_strict`, `errors`), what the router reads at run time (`model`, with the compiled
//! `condition`s and `tasks` and their regexes, `pattern`; the closed set of `provider` kinds and
//! the reserved `names`), and how an isolate keeps the live version (`cache`).

pub mod cache;
pub mod condition;
pub mod errors;
mod json_strict;
pub mod model;
pub mod names;
pub mod pattern;
pub mod provider;
pub mod raw;
mod targets;
pub mod tasks;
mod validate;

pub use errors::{summarize, RulesError};
pub use model::{
    Cascade, Cooldown, Defaults, Embeddings, FallbackOn, Model, Price, Provider, RetryPolicy,
    Route, Rules, Settings, Target, TaskModelConfig,
};
pub use raw::rules_schema;
pub use validate::{
    builtin_retry, parse_rules, DEFAULT_RETRY_STATUSES, DEFAULT_TIMEOUT_MS, TOP_LEVEL_FIELDS,
};
