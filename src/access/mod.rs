//! Who may call and how much: gateway keys (`auth`; made, listed and revoked by `keys`) and
//! their request and spend limits (`admission`), counted in the isolate (`limits`) or, with the
//! Durable Object bound, across the edge: the object's ledger (`ledger`) and the leases this
//! isolate holds from it (`lease`).

pub mod admission;
pub mod auth;
pub mod keys;
pub mod lease;
pub mod ledger;
pub mod limits;
