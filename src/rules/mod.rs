//! The rules document: what operators write (`raw`), how it is checked (`validate`, `json_strict`),
//! and what the router reads at run time (`model`).

mod json_strict;
pub mod model;
mod raw;
mod validate;

pub use model::{Model, Price, Provider, Route, Rules, Target};
pub use validate::{parse_rules, summarize, RulesError};
