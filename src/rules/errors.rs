//! Errors in a rules document: each with the path where it is (`routes[2].then`), collected so
//! that every problem is reported at once, and raw serde types read with the failing field's path.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// One problem in a rules document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// Where it is: `routes[2].then`, or empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every error, joined for a one-line message (a 503 body, a log line).
pub fn summarize(errors: &[RulesError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
pub(crate) struct Errors(pub(crate) Vec<RulesError>);

impl Errors {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(RulesError {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Deserialize one value into a raw type, with the path of the failing field in the error.
pub(crate) fn typed<T: DeserializeOwned>(
    value: &Value,
    at: &str,
    errors: &mut Errors,
) -> Option<T> {
    match serde_path_to_error::deserialize(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                at.to_string()
            } else {
                format!("{at}.{inner}")
            };
            errors.add(path, e.into_inner().to_string());
            None
        }
    }
}
