//! taskrouter: a task-based LLM router for Cloudflare Workers.
//!
//! Everything outside `shell` is the pure core: it compiles and is tested natively, and never sees
//! the Workers SDK (the manifest declares `worker` only for wasm32, so the compiler enforces it).
//! `shell` adapts Workers bindings (KV, fetch, Analytics Engine, secrets) to the traits in `ports`.

pub mod admin;
pub mod analytics;
pub mod attempt;
pub mod auth;
pub mod breaker;
pub mod cascade;
pub mod classify;
pub mod condition;
pub mod error;
pub mod explain;
pub mod facts;
pub mod front_anthropic;
pub mod gateway;
pub mod http;
pub mod limits;
pub mod plan;
pub mod ports;
pub mod providers;
pub mod request;
pub mod resilience;
pub mod route;
pub mod rules;
pub mod rules_cache;
pub mod sse;
pub mod stream;
pub mod task_model;

#[cfg(target_arch = "wasm32")]
mod shell;
