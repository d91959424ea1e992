//! The front doors beside chat completions: the Anthropic Messages API (`anthropic`), the model
//! list (`models`) and the admin API (`admin`).

pub mod admin;
pub mod anthropic;
pub mod models;
