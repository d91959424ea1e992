//! Deciding where a request goes, without calling anything: the facts it is routed on
//! (`facts`), its task (`classify`, with the cascade's pure parts in `cascade`), the route
//! (`route`), the ordered attempt plan (`plan`), and the same as a report (`explain`).

pub mod cascade;
pub mod classify;
pub mod explain;
pub mod facts;
pub mod plan;
pub mod route;
