//! The internal chat vocabulary every layer speaks: the OpenAI-shaped chat request as read
//! from a client (`request`) and token usage (`usage`).

pub mod request;
pub mod usage;
