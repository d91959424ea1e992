//! What every request leaves behind: the analytics record and its log line (`analytics`), and
//! the other log lines, as named events (`events`).

pub mod analytics;
pub mod events;
