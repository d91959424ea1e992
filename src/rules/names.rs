//! Names the rules reserve: what a caller names as `model` to let the router choose, and the rule
//! names recorded when no route of the rules decided. Validation refuses them as user names.

/// The rule name recorded when the caller named a model of the rules directly.
pub const EXPLICIT_RULE: &str = "explicit";
/// The rule name recorded when no route matched.
pub const DEFAULT_RULE: &str = "default";
/// The requested model that asks the rules to choose.
pub const AUTO: &str = "auto";
