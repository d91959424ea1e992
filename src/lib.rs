//! taskrouter: a task-based LLM router for Cloudflare Workers.
//!
//! Everything outside `shell` is the pure core: it compiles and is tested natively, and never sees
//! the Workers SDK (the manifest declares `worker` only for wasm32, so the compiler enforces it).
//! `shell` adapts Workers bindings (KV, fetch, Analytics Engine, secrets) to the traits in `ports`.
//!
//! The core's folders are layers, lowest first: `error`, `ports`, `task_model`; `http`; `rules`;
//! `chat`, `access`; `settings`, `decide`; `providers`; `stream`; `record`; `dispatch`; `fronts`;
//! `gateway`. Imports only point down (tests/layers.rs checks it).

pub mod access;
pub mod chat;
pub mod decide;
pub mod dispatch;
pub mod error;
pub mod fronts;
pub mod gateway;
pub mod http;
pub mod ports;
pub mod providers;
pub mod record;
pub mod rules;
pub mod settings;
pub mod stream;
pub mod task_model;

#[cfg(target_arch = "wasm32")]
mod shell;
