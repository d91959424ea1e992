//! What every request leaves behind: the analytics record and its log line (`analytics`), and
//! the other log lines, as named events (`events`), and the ready SQL queries over the data
//! points (`queries`).

pub mod analytics;
pub mod events;
pub mod queries;
