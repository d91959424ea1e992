//! The front doors beside chat completions: the Anthropic Messages API (`anthropic`), OpenAI's
//! Responses API (`responses`), the model list (`models`) and the admin API (`admin`).

pub mod admin;
pub mod anthropic;
pub mod models;
pub mod responses;
