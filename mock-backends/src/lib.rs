//! Programmable mock HTTP backends.
#![forbid(unsafe_code)]

pub mod duration;
pub mod latency;
