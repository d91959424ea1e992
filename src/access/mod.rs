//! Who may call and how much: gateway keys (`auth`) and their request and spend limits
//! (`limits`).

pub mod auth;
pub mod limits;
