//! The front doors beside chat completions: the Anthropic Messages API (`anthropic`), OpenAI's
//! Responses API (`responses`), the model list (`models`), the admin API (`admin`) and the
//! operator's console pages that call it (`console`).

pub mod admin;
pub mod anthropic;
pub mod console;
pub mod models;
pub mod responses;
